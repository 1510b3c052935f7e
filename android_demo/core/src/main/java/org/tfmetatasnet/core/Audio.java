package org.tfmetatasnet.core;

/**
 * Float audio in memory: one array per channel ({@code channels[c][frame]}), all the same
 * length, nominally in [-1, 1], at {@code sampleRate} Hz.
 */
public final class Audio {
    public final int sampleRate;
    public final float[][] channels;

    public Audio(int sampleRate, float[][] channels) {
        if (sampleRate <= 0) {
            throw new IllegalArgumentException("sample rate must be positive, got " + sampleRate);
        }
        if (channels.length == 0) {
            throw new IllegalArgumentException("audio needs at least one channel");
        }
        for (float[] channel : channels) {
            if (channel.length != channels[0].length) {
                throw new IllegalArgumentException("all channels must have the same length");
            }
        }
        this.sampleRate = sampleRate;
        this.channels = channels;
    }

    public int channelCount() {
        return channels.length;
    }

    /** Samples per channel. */
    public int frames() {
        return channels[0].length;
    }

    /** Duration in seconds. */
    public double seconds() {
        return (double) frames() / sampleRate;
    }
}
