package org.tfmetatasnet.demo

import android.content.res.AssetManager
import org.tfmetatasnet.core.ModelMetadata

/** One per-instrument model in the APK's assets: `<name>.tflite` with its `<name>.json`. */
class ModelAsset(val name: String, val metadata: ModelMetadata) {
    val modelFile get() = "$name.tflite"

    /** What the instrument list shows, e.g. "vocals (dynamic)". */
    override fun toString() = "${metadata.instrument} (${metadata.quantization})"
}

/** Finds the models that `metatasnet export tflite` wrote into the assets folder. */
object ModelAssets {
    /** Every `<name>.json` that has a `<name>.tflite` beside it, parsed and checked. */
    fun list(assets: AssetManager): List<ModelAsset> {
        val files = assets.list("").orEmpty().toSet()
        return files.filter { it.endsWith(".json") && "${it.removeSuffix(".json")}.tflite" in files }
            .sorted()
            .map { json ->
                val text = assets.open(json).bufferedReader().use { it.readText() }
                ModelAsset(json.removeSuffix(".json"), ModelMetadata.parse(text, json))
            }
    }
}
