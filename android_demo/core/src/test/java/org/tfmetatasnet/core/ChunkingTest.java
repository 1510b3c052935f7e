package org.tfmetatasnet.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.Test;

/** Chunking against tf_metatasnet.inference.apply, through the shared vectors. */
public class ChunkingTest {
    @Test
    public void windowsEqualPythons() {
        for (Map<String, Object> c : Vectors.cases("plan_windows")) {
            List<Window> windows = Chunking.planWindows(Vectors.integer(c, "length"), Vectors.integer(c, "chunk"),
                    Vectors.integer(c, "context"), Vectors.integer(c, "overlap"), Vectors.integer(c, "align"));
            @SuppressWarnings("unchecked")
            List<List<Object>> expected = (List<List<Object>>) c.get("windows");
            assertEquals("window count for " + c, expected.size(), windows.size());
            for (int k = 0; k < windows.size(); k++) {
                Window w = windows.get(k);
                List<Object> e = expected.get(k);
                String what = "window " + k + " of " + c;
                assertArrayEquals(what, Vectors.integers(e.subList(0, 4)),
                        new int[] {w.start, w.size, w.keepStart, w.keepStop});
                assertEquals(what, e.get(4), w.fadeIn);
                assertEquals(what, e.get(5), w.fadeOut);
            }
        }
    }

    @Test
    public void fadesEqualPythonsExactly() {
        for (Map<String, Object> c : Vectors.cases("fade_weights")) {
            float[] weights = Chunking.fadeWeights(Vectors.integer(c, "size"), Vectors.integer(c, "overlap"),
                    (Boolean) c.get("fade_in"), (Boolean) c.get("fade_out"));
            @SuppressWarnings("unchecked")
            List<Object> expected = (List<Object>) c.get("weights");
            assertEquals(expected.size(), weights.length);
            for (int k = 0; k < weights.length; k++) {
                assertEquals("weight " + k + " of " + c, ((Double) expected.get(k)).floatValue(), weights[k], 0f);
            }
        }
    }

    @Test
    public void chunkedFakeModelEqualsPythons() {
        for (Map<String, Object> c : Vectors.cases("apply_chunked")) {
            int[] factors = Vectors.integers(c.get("factors"));
            int outFactor = Vectors.integer(c, "out_factor");
            @SuppressWarnings("unchecked")
            List<Object> names = (List<Object>) c.get("inputs");
            float[][] signals = new float[names.size()][];
            for (int i = 0; i < signals.length; i++) {
                signals[i] = Vectors.f32((String) names.get(i));
            }
            long[] lastProgress = {0};
            int length = Vectors.integer(c, "length");
            float[] out = Chunking.applyChunked(new FakeModel(factors, outFactor), signals, length,
                    Vectors.integer(c, "chunk"), Vectors.integer(c, "context"), Vectors.integer(c, "overlap"),
                    factors, outFactor, Vectors.integer(c, "align"), (done, total) -> {
                        assertTrue(done > lastProgress[0] && total == length);
                        lastProgress[0] = done;
                    });
            Vectors.assertClose("apply_chunked " + c.get("expected"), Vectors.f32((String) c.get("expected")), out, 1e-5);
            assertEquals(length, lastProgress[0]);
        }
    }

    @Test
    public void rejectsBadArgumentsAsPythonDoes() {
        assertThrows(IllegalArgumentException.class, () -> Chunking.planWindows(1001, 300, 0, 0, 20));
        assertThrows(IllegalArgumentException.class, () -> Chunking.planWindows(1000, 300, 0, 300, 1));
        assertThrows(IllegalArgumentException.class, () -> Chunking.planWindows(1000, 0, 0, 0, 1));
    }

    @Test
    public void wrongModelOutputLengthIsNamed() {
        float[][] signals = {new float[400]};
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Chunking.applyChunked(
                inputs -> new float[3], signals, 400, 100, 20, 0, new int[] {1}, 4, 20, null));
        assertTrue(e.getMessage(), e.getMessage().contains("returned 3 samples"));
    }
}
