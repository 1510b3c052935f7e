package org.tfmetatasnet.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * The shared test vectors written by {@code android_demo/tools/make_test_vectors.py}, read
 * from the test class path ({@code /vectors/...}): {@code index.json} and raw little-endian
 * float32 {@code .f32} arrays.
 */
final class Vectors {
    private Vectors() {
    }

    static byte[] bytes(String name) {
        try (InputStream in = Vectors.class.getResourceAsStream("/vectors/" + name)) {
            assertNotNull("missing test vector " + name + " (run android_demo/tools/make_test_vectors.py)", in);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw new AssertionError("cannot read test vector " + name, e);
        }
    }

    static String text(String name) {
        return new String(bytes(name), StandardCharsets.UTF_8);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> index() {
        return (Map<String, Object>) Json.parse(text("index.json"), "index.json");
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> cases(String key) {
        return (List<Map<String, Object>>) index().get(key);
    }

    static float[] f32(String name) {
        ByteBuffer b = ByteBuffer.wrap(bytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    /** A channel-major {@code (channels, frames)} array. */
    static float[][] f32(String name, int channels) {
        float[] flat = f32(name);
        int frames = flat.length / channels;
        float[][] out = new float[channels][frames];
        for (int c = 0; c < channels; c++) {
            System.arraycopy(flat, c * frames, out[c], 0, frames);
        }
        return out;
    }

    static int integer(Map<String, Object> map, String key) {
        return ((Double) map.get(key)).intValue();
    }

    static int[] integers(Object list) {
        @SuppressWarnings("unchecked")
        List<Object> values = (List<Object>) list;
        int[] out = new int[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ((Double) values.get(i)).intValue();
        }
        return out;
    }

    /**
     * Sample-for-sample agreement: |actual - expected| <= rtol x max(|expected|, peak x 1e-2)
     * per sample, where peak is the expected signal's largest magnitude (so samples near zero
     * are compared relative to the signal, not to themselves).
     */
    static void assertClose(String what, float[] expected, float[] actual, double rtol) {
        assertEquals(what + ": length", expected.length, actual.length);
        double peak = 0;
        for (float v : expected) {
            peak = Math.max(peak, Math.abs(v));
        }
        for (int i = 0; i < expected.length; i++) {
            double tolerance = rtol * Math.max(Math.abs(expected[i]), peak * 1e-2) + 1e-30;
            if (!(Math.abs(actual[i] - expected[i]) <= tolerance)) {
                fail(what + ": sample " + i + " is " + actual[i] + ", expected " + expected[i]
                        + " (tolerance " + tolerance + ")");
            }
        }
    }
}
