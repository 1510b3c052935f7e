package org.tfmetatasnet.core;

import java.util.Arrays;

/**
 * Isolates one instrument of a song with a per-instrument model, as the metadata contract
 * describes; the Python mirror is {@code separate_channel} in
 * {@code android_demo/tools/make_test_vectors.py}.
 *
 * <p>Each channel is separated on its own:
 * <ol>
 *   <li>resample it ({@link SincResampler}) from the song's rate to each input's rate;</li>
 *   <li>divide each resampled signal by its standard deviation over the whole channel;</li>
 *   <li>pad to a whole number of model frames: the length in base samples is the longest
 *       input's, rounded up to a multiple of {@code align}, and at least one {@code window};</li>
 *   <li>run the model chunk by chunk ({@link Chunking#applyChunked}) with the metadata's
 *       chunk, context and overlap;</li>
 *   <li>cut the output to the song's length at the output rate, multiply it by the standard
 *       deviation of the input at the output's rate (the last, 32 kHz, one), and resample it
 *       back to the song's rate and length.</li>
 * </ol>
 */
public final class InstrumentSeparator {
    private final ModelMetadata meta;
    private final WindowModel model;

    public InstrumentSeparator(ModelMetadata meta, WindowModel model) {
        this.meta = meta;
        this.model = model;
    }

    /** Separates every channel of {@code song}; progress runs over all channels, in base samples. */
    public Audio separate(Audio song, ProgressListener progress) {
        int channels = song.channelCount();
        long perChannel = paddedLength(song.frames(), song.sampleRate);
        float[][] out = new float[channels][];
        for (int c = 0; c < channels; c++) {
            final long before = c * perChannel;
            ProgressListener inner = progress == null ? null
                    : (done, total) -> progress.progress(before + done, channels * perChannel);
            out[c] = separateChannel(song.channels[c], song.sampleRate, inner);
        }
        return new Audio(song.sampleRate, out);
    }

    /**
     * Separates one channel of {@code rate} Hz audio; returns the instrument at the same rate
     * and length. Progress is reported in base samples.
     */
    public float[] separateChannel(float[] channel, int rate, ProgressListener progress) {
        if (channel.length == 0) {
            throw new IllegalArgumentException("the audio has no samples");
        }
        int inputs = meta.inputs.size();
        int[] factors = meta.inputFactors();
        int length = paddedLength(channel.length, rate);                // base samples
        float[][] signals = new float[inputs][];
        double outputStd = 1.0;
        int scaleInput = outputScaleInput();
        for (int i = 0; i < inputs; i++) {
            float[] resampled = new SincResampler(rate, meta.inputs.get(i).sampleRate).resample(channel);
            double std = std(resampled);
            signals[i] = new float[length * factors[i]];                 // zero padded
            for (int k = 0; k < resampled.length; k++) {
                signals[i][k] = (float) (resampled[k] / std);
            }
            if (i == scaleInput) {
                outputStd = std;
            }
        }
        float[] output = Chunking.applyChunked(model, signals, length, meta.chunk, meta.context, meta.overlap,
                factors, meta.output.factor, meta.align, progress);     // length x outFactor samples
        signals = null;                                                 // free before resampling back
        long songAtOutputRate = SincResampler.outputLength(channel.length, rate, meta.outputRate);
        float[] trimmed = output.length <= songAtOutputRate ? output : Arrays.copyOf(output, (int) songAtOutputRate);
        output = null;
        for (int k = 0; k < trimmed.length; k++) {
            trimmed[k] = (float) (trimmed[k] * outputStd);              // undo the input's normalisation
        }
        float[] atSongRate = new SincResampler(meta.outputRate, rate).resample(trimmed);
        return atSongRate.length == channel.length ? atSongRate : Arrays.copyOf(atSongRate, channel.length);
    }

    /**
     * The input whose standard deviation scales the output: the one at the output's rate
     * (the last, 32 kHz, input of the paper model), else the highest-rate one.
     */
    int outputScaleInput() {
        int best = 0;
        for (int i = 0; i < meta.inputs.size(); i++) {
            int rate = meta.inputs.get(i).sampleRate;
            if (rate == meta.outputRate) {
                return i;
            }
            if (rate > meta.inputs.get(best).sampleRate) {
                best = i;
            }
        }
        return best;
    }

    /** The length in base samples that a song of {@code frames} at {@code rate} Hz is padded to. */
    public int paddedLength(int frames, int rate) {
        long longest = 0;
        for (ModelMetadata.Tensor input : meta.inputs) {
            long samples = SincResampler.outputLength(frames, rate, input.sampleRate);
            longest = Math.max(longest, (samples + input.factor - 1) / input.factor);
        }
        long length = (longest + meta.align - 1) / meta.align * meta.align;
        length = Math.max(length, meta.window);
        if (length > Integer.MAX_VALUE / 8) {
            throw new IllegalArgumentException("the audio is too long: " + frames + " samples");
        }
        return (int) length;
    }

    /** Population standard deviation (two passes, double); 1 for a silent signal. */
    static double std(float[] x) {
        double mean = 0.0;
        for (float v : x) {
            mean += v;
        }
        mean /= x.length;
        double squares = 0.0;
        for (float v : x) {
            double d = v - mean;
            squares += d * d;
        }
        double std = Math.sqrt(squares / x.length);
        return std > 0 && !Double.isNaN(std) ? std : 1.0;
    }
}
