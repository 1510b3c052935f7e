package org.tfmetatasnet.demo

import android.content.res.AssetManager
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.Interpreter
import org.tfmetatasnet.core.WindowModel

/**
 * The LiteRT interpreter behind the core's [WindowModel]: one window of one channel per call.
 *
 * The model is memory-mapped from the APK (assets are stored uncompressed, see
 * `androidResources.noCompress`). Inputs and output are float32 in every quantization variant;
 * their order and lengths come from the metadata and are checked against the model here.
 */
class LiteRtModel(assets: AssetManager, private val asset: ModelAsset, threads: Int) :
    WindowModel, AutoCloseable {

    private val meta = asset.metadata
    private val interpreter = Interpreter(map(assets, asset.modelFile), Interpreter.Options().setNumThreads(threads))
    private val inputBuffers = meta.inputs.map { floatBuffer(it.length) }   // [1, window x factor_i]
    private val outputBuffer = floatBuffer(meta.output.length)              // [1, window x outFactor]

    init {
        require(interpreter.inputTensorCount == meta.inputs.size) {
            "${asset.modelFile}: has ${interpreter.inputTensorCount} inputs, its metadata ${meta.inputs.size}"
        }
        for (input in meta.inputs) {
            val shape = interpreter.getInputTensor(input.index).shape()
            require(shape.contentEquals(intArrayOf(1, input.length))) {
                "${asset.modelFile}: input ${input.index} has shape ${shape.contentToString()}, " +
                    "its metadata [1, ${input.length}]"
            }
        }
        val shape = interpreter.getOutputTensor(meta.output.index).shape()
        require(shape.contentEquals(intArrayOf(1, meta.output.length))) {
            "${asset.modelFile}: output has shape ${shape.contentToString()}, its metadata [1, ${meta.output.length}]"
        }
    }

    override fun run(inputs: Array<FloatArray>): FloatArray {
        inputs.forEachIndexed { i, samples ->
            inputBuffers[i].rewind()
            inputBuffers[i].asFloatBuffer().put(samples)
        }
        outputBuffer.rewind()
        interpreter.runForMultipleInputsOutputs(
            arrayOf<Any>(*inputBuffers.toTypedArray()), mapOf<Int, Any>(meta.output.index to outputBuffer))
        outputBuffer.rewind()
        return FloatArray(meta.output.length).also { outputBuffer.asFloatBuffer().get(it) }
    }

    override fun close() = interpreter.close()

    private companion object {
        fun map(assets: AssetManager, file: String): MappedByteBuffer =
            assets.openFd(file).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.use { channel ->
                    channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
                }
            }

        fun floatBuffer(samples: Int): ByteBuffer =
            ByteBuffer.allocateDirect(4 * samples).order(ByteOrder.nativeOrder())
    }
}
