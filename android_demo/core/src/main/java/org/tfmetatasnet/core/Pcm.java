package org.tfmetatasnet.core;

/**
 * 16-bit PCM <-> float conversion, and (de)interleaving.
 *
 * <p>Both directions use the scale 32768, so {@code toFloat} then {@code toPcm16} gives back
 * every 16-bit value exactly (the convention of soundfile reading 16-bit files). Floats are
 * rounded half up ({@code floor(x * 32768 + 0.5)}) and clipped to [-32768, 32767]; NaN gives 0.
 */
public final class Pcm {
    private Pcm() {
    }

    public static float toFloat(short sample) {
        return sample / 32768f;
    }

    public static short toPcm16(float x) {
        if (Float.isNaN(x)) {
            return 0;
        }
        double scaled = Math.floor((double) x * 32768.0 + 0.5);
        return (short) Math.max(-32768.0, Math.min(32767.0, scaled));
    }

    /** Interleaved 16-bit frames ({@code [frame * channels + c]}) -> float {@code [c][frame]}. */
    public static float[][] deinterleave(short[] interleaved, int channels) {
        if (channels <= 0 || interleaved.length % channels != 0) {
            throw new IllegalArgumentException(interleaved.length + " samples are not whole frames of "
                    + channels + " channels");
        }
        int frames = interleaved.length / channels;
        float[][] out = new float[channels][frames];
        for (int f = 0, k = 0; f < frames; f++) {
            for (int c = 0; c < channels; c++) {
                out[c][f] = toFloat(interleaved[k++]);
            }
        }
        return out;
    }

    /** Float {@code [c][frame]} -> interleaved floats {@code [frame * channels + c]} (for AudioTrack). */
    public static float[] interleave(float[][] channels) {
        int frames = channels[0].length;
        float[] out = new float[frames * channels.length];
        for (int f = 0, k = 0; f < frames; f++) {
            for (float[] channel : channels) {
                out[k++] = channel[f];
            }
        }
        return out;
    }
}
