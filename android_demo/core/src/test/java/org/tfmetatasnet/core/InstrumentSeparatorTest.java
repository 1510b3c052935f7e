package org.tfmetatasnet.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import org.junit.Test;

/** The whole per-instrument pipeline against make_test_vectors.separate_channel. */
public class InstrumentSeparatorTest {
    @Test
    public void fakeModelSeparationEqualsPythons() {
        for (Map<String, Object> c : Vectors.cases("separate")) {
            ModelMetadata meta = ModelMetadata.parse(Vectors.text((String) c.get("metadata")), (String) c.get("metadata"));
            int channels = Vectors.integer(c, "channels");
            int rate = Vectors.integer(c, "rate");
            Audio song = new Audio(rate, Vectors.f32((String) c.get("input"), channels));
            FakeModel model = new FakeModel(meta.inputFactors(), meta.output.factor);
            InstrumentSeparator separator = new InstrumentSeparator(meta, model);
            assertEquals(Vectors.integer(c, "padded_length"), separator.paddedLength(song.frames(), rate));
            long[] last = {0, 0};
            Audio stem = separator.separate(song, (done, total) -> {
                assertTrue(done > last[0]);
                last[0] = done;
                last[1] = total;
            });
            assertEquals(last[1], last[0]);
            assertEquals(rate, stem.sampleRate);
            float[][] expected = Vectors.f32((String) c.get("expected"), channels);
            for (int ch = 0; ch < channels; ch++) {
                Vectors.assertClose("separate " + c.get("input") + " channel " + ch, expected[ch], stem.channels[ch], 1e-5);
            }
        }
    }

    @Test
    public void shortSongIsOneWindow() {
        ModelMetadata meta = ModelMetadata.parse(Vectors.text("fake_model.json"), "fake_model.json");
        FakeModel model = new FakeModel(meta.inputFactors(), meta.output.factor);
        float[] blip = new float[100];
        blip[10] = 0.5f;
        float[] out = new InstrumentSeparator(meta, model).separateChannel(blip, 44100, null);
        assertEquals(100, out.length);
        assertEquals(1, model.calls);
    }
}
