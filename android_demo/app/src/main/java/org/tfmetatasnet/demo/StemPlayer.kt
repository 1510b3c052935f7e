package org.tfmetatasnet.demo

import android.media.AudioAttributes
import android.media.AudioFormat
import android.media.AudioTrack
import org.tfmetatasnet.core.Audio
import org.tfmetatasnet.core.Pcm

/** Plays a stem once through an [AudioTrack] (float PCM, streamed from a background thread). */
class StemPlayer {
    @Volatile private var track: AudioTrack? = null

    val isPlaying get() = track != null

    /** Starts playing [audio] (mono or stereo); [onDone] runs on the player thread at the end or on stop. */
    fun play(audio: Audio, onDone: () -> Unit) {
        stop()
        val channelMask = if (audio.channelCount() == 1) AudioFormat.CHANNEL_OUT_MONO else AudioFormat.CHANNEL_OUT_STEREO
        val format = AudioFormat.Builder()
            .setEncoding(AudioFormat.ENCODING_PCM_FLOAT)
            .setSampleRate(audio.sampleRate)
            .setChannelMask(channelMask)
            .build()
        val minBuffer = AudioTrack.getMinBufferSize(audio.sampleRate, channelMask, AudioFormat.ENCODING_PCM_FLOAT)
        val player = AudioTrack.Builder()
            .setAudioAttributes(
                AudioAttributes.Builder()
                    .setUsage(AudioAttributes.USAGE_MEDIA)
                    .setContentType(AudioAttributes.CONTENT_TYPE_MUSIC)
                    .build())
            .setAudioFormat(format)
            .setBufferSizeInBytes(maxOf(minBuffer, 4 * 8192))
            .setTransferMode(AudioTrack.MODE_STREAM)
            .build()
        track = player
        val samples = Pcm.interleave(audio.channels)   // [frame * channels + c]
        Thread({
            try {
                player.play()
                var written = 0
                while (written < samples.size && track === player) {
                    val n = player.write(samples, written, minOf(8192, samples.size - written), AudioTrack.WRITE_BLOCKING)
                    if (n < 0) break
                    written += n
                }
                val frames = samples.size / audio.channelCount()
                while (track === player && player.playbackHeadPosition < frames) {
                    Thread.sleep(50)                   // let the buffered tail play out
                }
                if (track === player) player.stop()
            } finally {
                player.release()
                if (track === player) track = null
                onDone()
            }
        }, "stem-player").start()
    }

    fun stop() {
        val player = track ?: return
        track = null                  // the player thread sees this, stops writing and releases
        try {
            player.pause()            // also returns a blocked write() at once
            player.flush()
        } catch (e: IllegalStateException) {
            // already released by the player thread: nothing left to stop
        }
    }
}
