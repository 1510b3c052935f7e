package org.tfmetatasnet.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Chunked inference with context and overlap-add: {@code tf_metatasnet/inference/apply.py}'s
 * {@code plan_windows}, {@code fade_weights} and {@code apply_chunked} in Java, with the same
 * window positions, fades and rounding (the shared test vectors check it).
 *
 * <p>Positions are in <b>base samples</b>; input {@code i} has {@code factors[i]} samples per
 * base sample and the output {@code outFactor}. The song ({@code length} base samples, a
 * multiple of {@code align}) is separated in windows of {@code chunk + 2 context} samples that
 * lie inside the song rather than being padded at its ends; inner windows keep {@code chunk}
 * samples with {@code context} on both sides, one every {@code chunk - overlap}, and the first
 * and last windows keep their outer context too, so the song takes the fewest windows.
 * Neighbouring regions are joined by complementary linear fades over {@code overlap} samples.
 */
public final class Chunking {
    private Chunking() {
    }

    static int roundUp(int value, int align) {
        return (int) (((long) value + align - 1) / align * align);
    }

    /** The windows that cover {@code [0, length)} base samples (Python: {@code plan_windows}). */
    public static List<Window> planWindows(int length, int chunk, int context, int overlap, int align) {
        if (align <= 0) {
            throw new IllegalArgumentException("align must be positive, got " + align);
        }
        if (length <= 0 || length % align != 0) {
            throw new IllegalArgumentException("length must be a positive multiple of " + align + ", got " + length);
        }
        if (context < 0 || overlap < 0) {
            throw new IllegalArgumentException("context and overlap must not be negative");
        }
        chunk = roundUp(chunk, align);
        context = roundUp(context, align);
        overlap = roundUp(overlap, align);
        if (chunk <= 0) {
            throw new IllegalArgumentException("chunk must be positive");
        }
        if (2L * overlap > chunk) {
            throw new IllegalArgumentException("overlap (" + overlap + ") must be at most half the chunk (" + chunk
                    + "): a region's two crossfades must not overlap");
        }
        long window = (long) chunk + 2L * context;
        List<Window> windows = new ArrayList<>();
        if (length <= window) {
            windows.add(new Window(0, length, 0, length, false, false));
            return windows;
        }
        int size = (int) window;
        int hop = chunk - overlap;
        int count = (length - size + hop - 1) / hop + 1;     // ceil((length - size) / hop) + 1
        // Inner borders (each the start of a crossfade) one every hop, the slack split
        // between the first and the last region.
        int first = (int) (((long) length - overlap - (long) (count - 2) * hop) / (2L * align) * align);
        for (int k = 0; k < count; k++) {
            int keepStart = k > 0 ? first + (k - 1) * hop : 0;
            int keepStop = k < count - 1 ? first + k * hop + overlap : length;
            int start;
            if (k == 0) {
                start = 0;
            } else if (k == count - 1) {
                start = length - size;
            } else {
                start = keepStart - context;
            }
            windows.add(new Window(start, size, keepStart, keepStop, k > 0 && overlap > 0,
                    k < count - 1 && overlap > 0));
        }
        return windows;
    }

    /**
     * Weights of a kept region of {@code size} samples (Python: {@code fade_weights}): linear
     * fades {@code (k + 0.5) / overlap} over {@code overlap} samples at the ends that overlap a
     * neighbour, computed in float as NumPy does, so two neighbours' fades sum to one.
     */
    public static float[] fadeWeights(int size, int overlap, boolean fadeIn, boolean fadeOut) {
        float[] weights = new float[size];
        Arrays.fill(weights, 1f);
        if (overlap > 0) {
            float[] ramp = new float[overlap];
            for (int k = 0; k < overlap; k++) {
                ramp[k] = ((float) k + 0.5f) / overlap;
            }
            if (fadeIn) {
                for (int k = 0; k < overlap; k++) {
                    weights[k] *= ramp[k];
                }
            }
            if (fadeOut) {
                for (int k = 0; k < overlap; k++) {
                    weights[size - overlap + k] *= ramp[overlap - 1 - k];
                }
            }
        }
        return weights;
    }

    /**
     * Runs {@code model} over a whole signal window by window (Python: {@code apply_chunked}
     * with batch size 1 and one channel).
     *
     * @param signals per model input, {@code length x factors[i]} samples (already padded)
     * @param length the signal's length in base samples, a multiple of {@code align}
     * @return the model's output over the whole signal, {@code length x outFactor} samples
     */
    public static float[] applyChunked(WindowModel model, float[][] signals, int length, int chunk,
                                       int context, int overlap, int[] factors, int outFactor,
                                       int align, ProgressListener progress) {
        if (signals.length != factors.length) {
            throw new IllegalArgumentException(signals.length + " signals for " + factors.length + " model inputs");
        }
        for (int i = 0; i < signals.length; i++) {
            if ((long) signals[i].length != (long) length * factors[i]) {
                throw new IllegalArgumentException("input " + i + " has " + signals[i].length
                        + " samples, expected length x factor = " + (long) length * factors[i]);
            }
        }
        List<Window> windows = planWindows(length, chunk, context, overlap, align);
        int overlapOut = windows.size() > 1 ? roundUp(overlap, align) * outFactor : 0;
        float[] out = new float[length * outFactor];
        Window previous = null;
        float[] estimate = null;
        for (Window w : windows) {
            // Neighbouring windows can be the same piece of the song (a padded short song, the
            // windows slid inside its end): the model's output is then reused, not recomputed.
            if (previous == null || previous.start != w.start || previous.size != w.size) {
                float[][] inputs = new float[signals.length][];
                for (int i = 0; i < signals.length; i++) {
                    inputs[i] = Arrays.copyOfRange(signals[i], w.start * factors[i], (w.start + w.size) * factors[i]);
                }
                estimate = model.run(inputs);                           // size x outFactor samples
                if (estimate.length != w.size * outFactor) {
                    throw new IllegalStateException("the model returned " + estimate.length + " samples for a "
                            + "window of " + w.size + " base samples; expected " + w.size * outFactor);
                }
            }
            previous = w;
            int offset = (w.keepStart - w.start) * outFactor;
            int kept = (w.keepStop - w.keepStart) * outFactor;
            float[] fade = fadeWeights(kept, overlapOut, w.fadeIn, w.fadeOut);
            int target = w.keepStart * outFactor;
            for (int k = 0; k < kept; k++) {
                out[target + k] += estimate[offset + k] * fade[k];      // faded overlaps sum
            }
            if (progress != null) {
                progress.progress(w.keepStop, length);
            }
        }
        return out;
    }
}
