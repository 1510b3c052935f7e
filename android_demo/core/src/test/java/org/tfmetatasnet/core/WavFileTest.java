package org.tfmetatasnet.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * WAV reading of files written by Python (soundfile, wave) and writing of files that Python
 * reads back: with {@code -Dtfmetatasnet.wavOut=DIR} the written files are left in DIR for
 * {@code tests/test_android_core.py} to read with soundfile.
 */
public class WavFileTest {
    @SuppressWarnings("unchecked")
    private static Map<String, Object> wav() {
        return (Map<String, Object>) Vectors.index().get("wav");
    }

    @Test
    public void readsFilesWrittenByPython() {
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> files = (List<Map<String, Object>>) wav().get("files");
        for (Map<String, Object> f : files) {
            String name = (String) f.get("file");
            Audio audio = WavFile.read(Vectors.bytes(name), name);
            int channels = Vectors.integer(f, "channels");
            assertEquals(name, Vectors.integer(f, "rate"), audio.sampleRate);
            assertEquals(name, channels, audio.channelCount());
            float[][] expected = Vectors.f32((String) f.get("expected"), channels);
            for (int c = 0; c < channels; c++) {
                assertArrayEquals(name + " channel " + c, expected[c], audio.channels[c], 0f);
            }
        }
    }

    @Test
    public void writesAndReadsBackBothEncodings() throws IOException {
        Map<String, Object> w = wav();
        int channels = Vectors.integer(w, "channels");
        Audio audio = new Audio(Vectors.integer(w, "rate"), Vectors.f32((String) w.get("samples"), channels));
        for (WavFile.Encoding encoding : WavFile.Encoding.values()) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            WavFile.write(bytes, audio, encoding);
            Audio back = WavFile.read(bytes.toByteArray(), encoding.name());
            assertEquals(audio.sampleRate, back.sampleRate);
            for (int c = 0; c < channels; c++) {
                float[] expected = audio.channels[c].clone();
                if (encoding == WavFile.Encoding.PCM16) {
                    for (int i = 0; i < expected.length; i++) {
                        expected[i] = Pcm.toFloat(Pcm.toPcm16(expected[i]));
                    }
                }
                assertArrayEquals(encoding + " channel " + c, expected, back.channels[c], 0f);
            }
            String dir = System.getProperty("tfmetatasnet.wavOut");
            if (dir != null) {
                try (OutputStream out = new FileOutputStream(dir + "/java_" + encoding.name().toLowerCase() + ".wav")) {
                    WavFile.write(out, audio, encoding);
                }
            }
        }
    }

    @Test
    public void pcm16ConversionEqualsPythons() {
        @SuppressWarnings("unchecked")
        Map<String, Object> pcm = (Map<String, Object>) Vectors.index().get("pcm16");
        @SuppressWarnings("unchecked")
        List<Object> floats = (List<Object>) pcm.get("floats");
        int[] ints = Vectors.integers(pcm.get("ints"));
        for (int i = 0; i < ints.length; i++) {
            float x = ((Double) floats.get(i)).floatValue();
            assertEquals("toPcm16(" + x + ")", ints[i], Pcm.toPcm16(x));
        }
        for (int s = -32768; s <= 32767; s++) {
            assertEquals(s, Pcm.toPcm16(Pcm.toFloat((short) s)));
        }
        float[][] split = Pcm.deinterleave(new short[] {1, 2, 3, 4, 5, 6}, 2);
        assertArrayEquals(new float[] {1 / 32768f, 3 / 32768f, 5 / 32768f}, split[0], 0f);
        assertArrayEquals(new float[] {1 / 32768f, 2 / 32768f, 3 / 32768f, 4 / 32768f, 5 / 32768f, 6 / 32768f},
                Pcm.interleave(split), 0f);
    }

    @Test
    public void badFilesAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> WavFile.read(new byte[] {'R', 'I', 'F', 'F'}, "song.wav"));
        assertTrue(e.getMessage(), e.getMessage().startsWith("song.wav: not a RIFF/WAVE file"));
        byte[] pcm = Vectors.bytes("wave_pcm16.wav");
        pcm[34] = 8;   // bits per sample
        e = assertThrows(IllegalArgumentException.class, () -> WavFile.read(pcm, "eight.wav"));
        assertTrue(e.getMessage(), e.getMessage().contains("eight.wav: unsupported encoding"));
    }
}
