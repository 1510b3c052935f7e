package org.tfmetatasnet.core;

/**
 * The deterministic fake model of the test vectors ({@code fake_model} in
 * {@code make_test_vectors.py}), in float, in the same order:
 * {@code out[j] = sum_i w_i x_i[j f_i / outFactor] + 0.1 x_0[0] + 1e-3 j / n}.
 * The term in {@code x_0[0]} changes with the window's start and the ramp with the position
 * inside the window, so a wrong window or kept offset shows in the output.
 */
final class FakeModel implements WindowModel {
    private static final float[] WEIGHTS = {-0.125f, 0.25f, 0.5f};
    private final int[] factors;
    private final int outFactor;
    int calls;

    FakeModel(int[] factors, int outFactor) {
        this.factors = factors;
        this.outFactor = outFactor;
    }

    @Override
    public float[] run(float[][] inputs) {
        calls++;
        int n = inputs[0].length / factors[0] * outFactor;
        float[] out = new float[n];
        for (int i = 0; i < inputs.length; i++) {
            for (int j = 0; j < n; j++) {
                out[j] = out[j] + WEIGHTS[i] * inputs[i][(int) ((long) j * factors[i] / outFactor)];
            }
        }
        float start = 0.1f * inputs[0][0];
        for (int j = 0; j < n; j++) {
            out[j] = out[j] + start;
            out[j] = out[j] + 1e-3f * (float) j / (float) n;
        }
        return out;
    }
}
