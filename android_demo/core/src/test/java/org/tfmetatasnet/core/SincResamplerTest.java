package org.tfmetatasnet.core;

import static org.junit.Assert.assertEquals;

import java.util.Map;
import org.junit.Test;

/** The resampler against tf_metatasnet.audio.sinc, through the shared vectors. */
public class SincResamplerTest {
    @Test
    public void equalsPythonsReference() {
        for (Map<String, Object> c : Vectors.cases("resample")) {
            SincResampler resampler = new SincResampler(Vectors.integer(c, "rate_in"), Vectors.integer(c, "rate_out"));
            float[] x = Vectors.f32((String) c.get("input"));
            float[] y = resampler.resample(x);
            assertEquals(y.length, resampler.outputLength(x.length));
            Vectors.assertClose("resample " + c.get("expected"), Vectors.f32((String) c.get("expected")), y, 1e-5);
        }
    }

    @Test
    public void keepsASlowSineAndLengths() {
        SincResampler down = new SincResampler(44100, 8000);
        float[] x = new float[44100];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(2 * Math.PI * 440 * i / 44100.0);
        }
        float[] y = down.resample(x);
        assertEquals(8000, y.length);
        for (int n = 1000; n < 7000; n++) {
            assertEquals((float) Math.sin(2 * Math.PI * 440 * n / 8000.0), y[n], 1e-4);
        }
        assertEquals(1, down.outputLength(3));
        assertEquals(new SincResampler(32000, 44100).outputLength(32000), 44100);
    }

    @Test
    public void besselMatchesKnownValues() {
        assertEquals(1.0, SincResampler.besselI0(0), 0);
        assertEquals(2815.716628466254, SincResampler.besselI0(10), 1e-9);   // scipy.special.i0(10)
    }
}
