package org.tfmetatasnet.demo

import android.content.Context
import android.media.AudioFormat
import android.media.MediaCodec
import android.media.MediaExtractor
import android.media.MediaFormat
import android.net.Uri
import java.nio.ByteOrder
import org.tfmetatasnet.core.Audio
import org.tfmetatasnet.core.Pcm

/**
 * Decodes any audio file Android can read (mp3, m4a/aac, flac, ogg, wav, ...) to float audio
 * with MediaExtractor and MediaCodec: the first audio track, as 16-bit PCM, at the file's own
 * rate and channel count. More than two channels are averaged to mono (the model is mono;
 * mono and stereo songs keep their channels, each separated on its own).
 */
object AudioDecoder {
    /** Longest song the demo accepts: it holds the song and its stem in memory. */
    const val MAX_SECONDS = 10 * 60

    fun decode(context: Context, uri: Uri): Audio {
        val extractor = MediaExtractor()
        try {
            extractor.setDataSource(context, uri, null)
            val track = (0 until extractor.trackCount).firstOrNull {
                extractor.getTrackFormat(it).getString(MediaFormat.KEY_MIME).orEmpty().startsWith("audio/")
            } ?: throw IllegalArgumentException("$uri: has no audio track")
            extractor.selectTrack(track)
            val format = extractor.getTrackFormat(track)
            val codec = MediaCodec.createDecoderByType(format.getString(MediaFormat.KEY_MIME)!!)
            try {
                codec.configure(format, null, null, 0)
                codec.start()
                return drain(extractor, codec, format, uri)
            } finally {
                codec.release()
            }
        } finally {
            extractor.release()
        }
    }

    private fun drain(extractor: MediaExtractor, codec: MediaCodec, trackFormat: MediaFormat, uri: Uri): Audio {
        var rate = trackFormat.getInteger(MediaFormat.KEY_SAMPLE_RATE)
        var channels = trackFormat.getInteger(MediaFormat.KEY_CHANNEL_COUNT)
        var floatOutput = false
        val pcm = ShortBuilder()                 // interleaved 16-bit samples
        val info = MediaCodec.BufferInfo()
        var inputDone = false
        while (true) {
            if (!inputDone) {
                val index = codec.dequeueInputBuffer(10_000)
                if (index >= 0) {
                    val size = extractor.readSampleData(codec.getInputBuffer(index)!!, 0)
                    if (size < 0) {
                        codec.queueInputBuffer(index, 0, 0, 0, MediaCodec.BUFFER_FLAG_END_OF_STREAM)
                        inputDone = true
                    } else {
                        codec.queueInputBuffer(index, 0, size, extractor.sampleTime, 0)
                        extractor.advance()
                    }
                }
            }
            val index = codec.dequeueOutputBuffer(info, 10_000)
            if (index == MediaCodec.INFO_OUTPUT_FORMAT_CHANGED) {
                val format = codec.outputFormat
                rate = format.getInteger(MediaFormat.KEY_SAMPLE_RATE)
                channels = format.getInteger(MediaFormat.KEY_CHANNEL_COUNT)
                val encoding = if (format.containsKey(MediaFormat.KEY_PCM_ENCODING))
                    format.getInteger(MediaFormat.KEY_PCM_ENCODING) else AudioFormat.ENCODING_PCM_16BIT
                require(encoding == AudioFormat.ENCODING_PCM_16BIT || encoding == AudioFormat.ENCODING_PCM_FLOAT) {
                    "$uri: the decoder gives PCM encoding $encoding; this demo reads 16-bit or float PCM"
                }
                floatOutput = encoding == AudioFormat.ENCODING_PCM_FLOAT
            } else if (index >= 0) {
                val buffer = codec.getOutputBuffer(index)!!.order(ByteOrder.nativeOrder())
                buffer.position(info.offset)
                buffer.limit(info.offset + info.size)
                if (floatOutput) {
                    val floats = buffer.asFloatBuffer()
                    while (floats.hasRemaining()) pcm.add(Pcm.toPcm16(floats.get()))
                } else {
                    val shorts = buffer.asShortBuffer()
                    while (shorts.hasRemaining()) pcm.add(shorts.get())
                }
                codec.releaseOutputBuffer(index, false)
                require(pcm.size / channels <= MAX_SECONDS.toLong() * rate) {
                    "$uri: longer than ${MAX_SECONDS / 60} minutes; this demo holds the whole song in memory"
                }
                if (info.flags and MediaCodec.BUFFER_FLAG_END_OF_STREAM != 0) break
            }
        }
        require(pcm.size >= channels) { "$uri: decoded to no audio samples" }
        val samples = pcm.toArray()
        val usable = samples.size - samples.size % channels
        val audio = Audio(rate, Pcm.deinterleave(samples.copyOf(usable), channels))
        return if (channels > 2) downmix(audio) else audio
    }

    private fun downmix(audio: Audio): Audio {
        val mono = FloatArray(audio.frames())
        for (channel in audio.channels) {
            for (i in mono.indices) mono[i] += channel[i] / audio.channelCount()
        }
        return Audio(audio.sampleRate, arrayOf(mono))
    }

    /** A growable ShortArray (boxing-free). */
    private class ShortBuilder {
        private var data = ShortArray(1 shl 20)
        var size = 0
            private set

        fun add(value: Short) {
            if (size == data.size) data = data.copyOf(data.size * 2)
            data[size++] = value
        }

        fun toArray(): ShortArray = data.copyOf(size)
    }
}
