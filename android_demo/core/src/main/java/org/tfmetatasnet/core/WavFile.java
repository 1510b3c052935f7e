package org.tfmetatasnet.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Reading and writing RIFF/WAVE files: 16-bit PCM and 32-bit float.
 *
 * <p>Reading accepts PCM 16/24/32-bit and IEEE float 32-bit, plain or
 * {@code WAVE_FORMAT_EXTENSIBLE}, and skips chunks it does not need (LIST, PEAK, fact, ...).
 * Writing produces the canonical layout: {@code fmt } (16 bytes for PCM; 18 plus a
 * {@code fact} chunk for float, as the format requires for non-PCM data) and {@code data}.
 * Only APIs that Android 24 has are used.
 */
public final class WavFile {
    /** Sample encodings that {@link #write} produces. */
    public enum Encoding {
        PCM16(1, 16),
        FLOAT32(3, 32);

        final int formatTag;
        final int bits;

        Encoding(int formatTag, int bits) {
            this.formatTag = formatTag;
            this.bits = bits;
        }
    }

    private static final int FORMAT_PCM = 1;
    private static final int FORMAT_FLOAT = 3;
    private static final int FORMAT_EXTENSIBLE = 0xFFFE;

    private WavFile() {
    }

    /** Reads a whole WAV stream; {@code name} (e.g. the file name) names it in errors. */
    public static Audio read(InputStream in, String name) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        byte[] buffer = new byte[1 << 16];
        for (int n; (n = in.read(buffer)) > 0; ) {
            all.write(buffer, 0, n);
        }
        return read(all.toByteArray(), name);
    }

    /** Reads WAV file bytes; {@code name} names the file in errors. */
    public static Audio read(byte[] bytes, String name) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 12 || b.getInt(0) != fourCC("RIFF") || b.getInt(8) != fourCC("WAVE")) {
            throw new IllegalArgumentException(name + ": not a RIFF/WAVE file");
        }
        int format = -1;
        int channels = 0;
        int rate = 0;
        int bits = 0;
        int dataStart = -1;
        int dataSize = 0;
        int pos = 12;
        while (pos + 8 <= bytes.length) {
            int id = b.getInt(pos);
            long size = b.getInt(pos + 4) & 0xFFFFFFFFL;
            int body = pos + 8;
            if (id == fourCC("fmt ")) {
                if (size < 16 || body + size > bytes.length) {
                    throw new IllegalArgumentException(name + ": truncated fmt chunk");
                }
                format = b.getShort(body) & 0xFFFF;
                channels = b.getShort(body + 2) & 0xFFFF;
                rate = b.getInt(body + 4);
                bits = b.getShort(body + 14) & 0xFFFF;
                if (format == FORMAT_EXTENSIBLE) {
                    if (size < 40) {
                        throw new IllegalArgumentException(name + ": truncated WAVE_FORMAT_EXTENSIBLE fmt chunk");
                    }
                    format = b.getShort(body + 24) & 0xFFFF;   // first two bytes of the sub-format GUID
                }
            } else if (id == fourCC("data")) {
                dataStart = body;
                dataSize = (int) Math.min(size, bytes.length - body);   // tolerate a truncated last chunk
                break;
            }
            pos = (int) Math.min(Integer.MAX_VALUE, body + size + (size & 1));   // chunks are word aligned
        }
        if (format < 0) {
            throw new IllegalArgumentException(name + ": no fmt chunk");
        }
        if (dataStart < 0) {
            throw new IllegalArgumentException(name + ": no data chunk");
        }
        if (channels == 0 || rate <= 0) {
            throw new IllegalArgumentException(name + ": invalid fmt chunk (" + channels + " channels, "
                    + rate + " Hz)");
        }
        boolean supported = (format == FORMAT_PCM && (bits == 16 || bits == 24 || bits == 32))
                || (format == FORMAT_FLOAT && bits == 32);
        if (!supported) {
            throw new IllegalArgumentException(name + ": unsupported encoding (format tag " + format + ", "
                    + bits + " bits); readable: PCM 16/24/32-bit, float 32-bit");
        }
        int bytesPerSample = bits / 8;
        int frames = dataSize / (bytesPerSample * channels);
        float[][] out = new float[channels][frames];
        int p = dataStart;
        for (int f = 0; f < frames; f++) {
            for (int c = 0; c < channels; c++, p += bytesPerSample) {
                out[c][f] = sample(b, p, format, bits);
            }
        }
        return new Audio(rate, out);
    }

    private static float sample(ByteBuffer b, int p, int format, int bits) {
        if (format == FORMAT_FLOAT) {
            return b.getFloat(p);
        }
        switch (bits) {
            case 16: return Pcm.toFloat(b.getShort(p));
            case 24: return ((b.get(p) & 0xFF) | (b.get(p + 1) & 0xFF) << 8 | b.get(p + 2) << 16) / 8388608f;
            default: return (float) (b.getInt(p) / 2147483648.0);
        }
    }

    /** Writes {@code audio} as a WAV stream (not closed). */
    public static void write(OutputStream out, Audio audio, Encoding encoding) throws IOException {
        int channels = audio.channelCount();
        int frames = audio.frames();
        int bytesPerSample = encoding.bits / 8;
        long dataSize = (long) frames * channels * bytesPerSample;
        boolean isFloat = encoding == Encoding.FLOAT32;
        int fmtSize = isFloat ? 18 : 16;
        int factSize = isFloat ? 12 : 0;
        long riffSize = 4 + (8 + fmtSize) + factSize + (8 + dataSize);
        if (riffSize > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("audio too long for a WAV file (" + dataSize + " bytes of samples)");
        }
        ByteBuffer header = ByteBuffer.allocate(12 + 8 + fmtSize + factSize + 8).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(fourCC("RIFF")).putInt((int) riffSize).putInt(fourCC("WAVE"));
        header.putInt(fourCC("fmt ")).putInt(fmtSize);
        header.putShort((short) encoding.formatTag).putShort((short) channels).putInt(audio.sampleRate);
        header.putInt(audio.sampleRate * channels * bytesPerSample);           // bytes per second
        header.putShort((short) (channels * bytesPerSample)).putShort((short) encoding.bits);
        if (isFloat) {
            header.putShort((short) 0);                                          // cbSize
            header.putInt(fourCC("fact")).putInt(4).putInt(frames);
        }
        header.putInt(fourCC("data")).putInt((int) dataSize);
        out.write(header.array());
        ByteBuffer block = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (int f = 0; f < frames; f++) {
            for (int c = 0; c < channels; c++) {
                if (block.remaining() < bytesPerSample) {
                    out.write(block.array(), 0, block.position());
                    block.clear();
                }
                float x = audio.channels[c][f];
                if (isFloat) {
                    block.putFloat(x);
                } else {
                    block.putShort(Pcm.toPcm16(x));
                }
            }
        }
        out.write(block.array(), 0, block.position());
    }

    private static int fourCC(String s) {
        return (s.charAt(0)) | (s.charAt(1) << 8) | (s.charAt(2) << 16) | (s.charAt(3) << 24);
    }
}
