package org.tfmetatasnet.demo

import android.net.Uri
import android.os.Bundle
import android.os.SystemClock
import android.provider.OpenableColumns
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.ProgressBar
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import java.io.BufferedOutputStream
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import org.tfmetatasnet.core.Audio
import org.tfmetatasnet.core.InstrumentSeparator
import org.tfmetatasnet.core.WavFile

/**
 * The demo's one screen: choose a song and an instrument, isolate it with the instrument's
 * TFLite model, play the stem and save it as WAV.
 *
 * All audio logic is in the plain-Java core (`org.tfmetatasnet.core`); this class only wires
 * the UI, the decoder ([AudioDecoder]), the interpreter ([LiteRtModel]) and the player.
 * Decoding and separation run on one background thread; the UI is updated on the main thread.
 */
class MainActivity : AppCompatActivity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private val player = StemPlayer()
    private var models: List<ModelAsset> = emptyList()
    private var songUri: Uri? = null
    private var songName = "song"
    private var stem: Audio? = null
    private var busy = false

    private lateinit var songView: TextView
    private lateinit var instrumentView: Spinner
    private lateinit var separateButton: Button
    private lateinit var progressBar: ProgressBar
    private lateinit var statusView: TextView
    private lateinit var playButton: Button
    private lateinit var saveButton: Button

    private val openSong = registerForActivityResult(ActivityResultContracts.OpenDocument()) { uri ->
        if (uri != null) {
            songUri = uri
            songName = displayName(uri)
            songView.text = songName
            stem = null
            updateButtons()
        }
    }

    private val saveStem = registerForActivityResult(ActivityResultContracts.CreateDocument("audio/wav")) { uri ->
        val audio = stem
        if (uri != null && audio != null) save(audio, uri)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        songView = findViewById(R.id.song)
        instrumentView = findViewById(R.id.instrument)
        separateButton = findViewById(R.id.separate)
        progressBar = findViewById(R.id.progress)
        statusView = findViewById(R.id.status)
        playButton = findViewById(R.id.play)
        saveButton = findViewById(R.id.save)

        models = try {
            ModelAssets.list(assets)
        } catch (e: IllegalArgumentException) {
            statusView.text = e.message          // names the metadata file and field
            emptyList()
        }
        if (models.isEmpty() && statusView.text.isEmpty()) statusView.setText(R.string.no_models)
        instrumentView.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models)

        findViewById<Button>(R.id.choose_song).setOnClickListener { openSong.launch(arrayOf("audio/*")) }
        separateButton.setOnClickListener { separate() }
        playButton.setOnClickListener { togglePlayback() }
        saveButton.setOnClickListener {
            val instrument = (instrumentView.selectedItem as ModelAsset).metadata.instrument
            saveStem.launch("${songName.substringBeforeLast('.')}_$instrument.wav")
        }
        updateButtons()
    }

    override fun onDestroy() {
        player.stop()
        worker.shutdownNow()
        super.onDestroy()
    }

    /** Decodes the song and separates the chosen instrument on the worker thread. */
    private fun separate() {
        val uri = songUri ?: return
        val model = instrumentView.selectedItem as? ModelAsset ?: return
        player.stop()
        busy = true
        stem = null
        updateButtons()
        progressBar.progress = 0
        statusView.text = "Decoding…"
        worker.execute {
            try {
                val song = AudioDecoder.decode(this, uri)
                val threads = Runtime.getRuntime().availableProcessors().coerceIn(1, 4)
                val started = SystemClock.elapsedRealtime()
                val result = LiteRtModel(assets, model, threads).use { interpreter ->
                    InstrumentSeparator(model.metadata, interpreter).separate(song) { done, total ->
                        val fraction = done.toDouble() / total
                        val seconds = (SystemClock.elapsedRealtime() - started) / 1000.0
                        runOnUiThread {
                            progressBar.progress = (1000 * fraction).toInt()
                            statusView.text = status(song, fraction, seconds)
                        }
                    }
                }
                val seconds = (SystemClock.elapsedRealtime() - started) / 1000.0
                runOnUiThread {
                    stem = result
                    progressBar.progress = 1000
                    statusView.text = status(song, 1.0, seconds) + "\n$model isolated."
                }
            } catch (e: Exception) {
                runOnUiThread { statusView.text = "Failed: ${e.message ?: e.javaClass.simpleName}" }
            } catch (e: OutOfMemoryError) {
                runOnUiThread { statusView.text = "Failed: out of memory (try a shorter song)" }
            } finally {
                runOnUiThread {
                    busy = false
                    updateButtons()
                }
            }
        }
    }

    /**
     * Progress and real-time factor: seconds of computation per second of audio (all
     * channels separated; below 1 is faster than real time).
     */
    private fun status(song: Audio, fraction: Double, seconds: Double): String {
        val audioDone = fraction * song.seconds()
        val rtf = if (audioDone > 0) seconds / audioDone else 0.0
        return String.format(Locale.US, "%.0f %% of %.1f s (%d ch) in %.1f s, real-time factor %.2f",
            100 * fraction, song.seconds(), song.channelCount(), seconds, rtf)
    }

    private fun togglePlayback() {
        if (player.isPlaying) {
            player.stop()
        } else {
            val audio = stem ?: return
            player.play(audio) { runOnUiThread { updateButtons() } }
        }
        updateButtons()
    }

    private fun save(audio: Audio, uri: Uri) {
        worker.execute {
            val message = try {
                contentResolver.openOutputStream(uri)!!.use { out ->
                    BufferedOutputStream(out).use { WavFile.write(it, audio, WavFile.Encoding.PCM16) }
                }
                "Saved ${displayName(uri)}"
            } catch (e: Exception) {
                "Could not save: ${e.message}"
            }
            runOnUiThread { statusView.text = message }
        }
    }

    private fun updateButtons() {
        separateButton.isEnabled = !busy && songUri != null && models.isNotEmpty()
        playButton.isEnabled = !busy && stem != null
        playButton.setText(if (player.isPlaying) R.string.stop else R.string.play)
        saveButton.isEnabled = !busy && stem != null
    }

    private fun displayName(uri: Uri): String =
        contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { cursor ->
            if (cursor.moveToFirst()) cursor.getString(0) else null
        } ?: uri.lastPathSegment ?: "song"
}
