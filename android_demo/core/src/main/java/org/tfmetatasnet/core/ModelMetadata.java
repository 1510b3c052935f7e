package org.tfmetatasnet.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The metadata JSON written next to each per-instrument {@code .tflite} model
 * ({@code <instrument>_<quantization>.json}, format {@code tf_metatasnet.tflite/1}).
 *
 * <p>It says everything the app needs to run the model: the model's inputs (one mono
 * waveform per stage rate, in interpreter input order), its output, and how a song is cut
 * into windows. Lengths ({@link #chunk}, {@link #context}, {@link #overlap}, {@link #window},
 * {@link #align}) are in <b>base samples</b>: samples at {@link #baseRate} (8 kHz for the
 * paper model); a tensor at {@code factor} times that rate has {@code factor} samples per
 * base sample. Parsing checks the fields against each other, so a model and its metadata
 * that disagree fail here with a message naming the file and the field, not later inside
 * the interpreter.
 */
public final class ModelMetadata {
    /** The only format this code reads. */
    public static final String FORMAT = "tf_metatasnet.tflite/1";

    /** One model tensor: a mono waveform at {@code sampleRate} = base rate x {@code factor}. */
    public static final class Tensor {
        public final String name;
        public final int index;        // interpreter input (or output) index
        public final int sampleRate;   // Hz
        public final int factor;       // samples per base sample
        public final int length;       // samples = window x factor (shape [1, length])

        Tensor(String name, int index, int sampleRate, int factor, int length) {
            this.name = name;
            this.index = index;
            this.sampleRate = sampleRate;
            this.factor = factor;
            this.length = length;
        }
    }

    public final String modelVersion;
    public final String instrument;
    public final List<String> sources;
    public final String quantization;
    public final int baseRate;        // Hz
    public final int outputRate;      // Hz
    public final int chunk;           // kept region per window, base samples
    public final int context;         // context on each side, base samples
    public final int overlap;         // crossfade between kept regions, base samples
    public final int window;          // chunk + 2 x context: the model's input length, base samples
    public final int align;           // model stride, base samples
    public final List<Tensor> inputs; // in interpreter input order
    public final Tensor output;

    private ModelMetadata(Map<String, Object> json, String source) {
        Fields f = new Fields(json, source, "");
        String format = f.string("format");
        if (!FORMAT.equals(format)) {
            throw new IllegalArgumentException(source + ": field \"format\" is \"" + format
                    + "\"; this app reads \"" + FORMAT + "\"");
        }
        modelVersion = f.string("model_version");
        instrument = f.string("instrument");
        List<String> names = new ArrayList<>();
        for (Object o : f.list("sources")) {
            if (!(o instanceof String)) {
                throw f.error("sources", "must be a list of strings");
            }
            names.add((String) o);
        }
        sources = Collections.unmodifiableList(names);
        if (!sources.contains(instrument)) {
            throw f.error("instrument", "\"" + instrument + "\" is not one of the sources " + sources);
        }
        quantization = f.string("quantization");
        baseRate = f.positiveInt("base_rate");
        outputRate = f.positiveInt("output_rate");
        align = f.positiveInt("align");
        chunk = f.multiple("chunk", align, true);
        context = f.multiple("context", align, false);
        overlap = f.multiple("overlap", align, false);
        window = f.positiveInt("window");
        if (2L * overlap > chunk) {
            throw f.error("overlap", overlap + " must be at most half the chunk (" + chunk + ")");
        }
        if (window != chunk + 2 * context) {
            throw f.error("window", window + " must be chunk + 2 x context = " + (chunk + 2 * context));
        }
        List<Tensor> tensors = new ArrayList<>();
        List<Object> list = f.list("inputs");
        for (int i = 0; i < list.size(); i++) {
            tensors.add(tensor(list.get(i), source, "inputs[" + i + "]"));
        }
        if (tensors.isEmpty()) {
            throw f.error("inputs", "is empty");
        }
        tensors.sort(Comparator.comparingInt(t -> t.index));
        for (int i = 0; i < tensors.size(); i++) {
            if (tensors.get(i).index != i) {
                throw f.error("inputs", "indices must be 0.." + (tensors.size() - 1));
            }
        }
        inputs = Collections.unmodifiableList(tensors);
        output = tensor(json.get("output"), source, "output");
        if (output.sampleRate != outputRate) {
            throw f.error("output", "sample_rate " + output.sampleRate + " differs from output_rate "
                    + outputRate);
        }
    }

    /** Parses and checks a metadata document; {@code source} (e.g. the asset's name) names it in errors. */
    public static ModelMetadata parse(String jsonText, String source) {
        Object json = Json.parse(jsonText, source);
        if (!(json instanceof Map)) {
            throw new IllegalArgumentException(source + ": metadata must be a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) json;
        return new ModelMetadata(map, source);
    }

    /** Samples per base sample of each input, in input order (e.g. {1, 2, 4}). */
    public int[] inputFactors() {
        int[] factors = new int[inputs.size()];
        for (int i = 0; i < factors.length; i++) {
            factors[i] = inputs.get(i).factor;
        }
        return factors;
    }

    private Tensor tensor(Object value, String source, String where) {
        if (!(value instanceof Map)) {
            throw new IllegalArgumentException(source + ": field \"" + where + "\" must be an object");
        }
        @SuppressWarnings("unchecked")
        Fields f = new Fields((Map<String, Object>) value, source, where + ".");
        String name = f.string("name");
        int index = f.nonNegativeInt("index");
        int rate = f.positiveInt("sample_rate");
        int factor = f.positiveInt("factor");
        if (rate != baseRate * factor) {
            throw f.error("sample_rate", rate + " is not base_rate x factor = " + baseRate * factor);
        }
        List<Object> shape = f.list("shape");
        int length = window * factor;
        if (shape.size() != 2 || !Double.valueOf(1).equals(shape.get(0))
                || !Double.valueOf(length).equals(shape.get(1))) {
            throw f.error("shape", shape + " must be [1, window x factor] = [1, " + length + "]");
        }
        String dtype = f.string("dtype");
        if (!"float32".equals(dtype)) {
            throw f.error("dtype", "is \"" + dtype + "\"; model inputs and outputs must be float32");
        }
        return new Tensor(name, index, rate, factor, length);
    }

    /** Typed access to one JSON object's fields with errors that name the field. */
    private static final class Fields {
        private final Map<String, Object> map;
        private final String source;
        private final String prefix;

        Fields(Map<String, Object> map, String source, String prefix) {
            this.map = map;
            this.source = source;
            this.prefix = prefix;
        }

        Object get(String key) {
            if (!map.containsKey(key)) {
                throw error(key, "is missing");
            }
            return map.get(key);
        }

        String string(String key) {
            Object value = get(key);
            if (!(value instanceof String)) {
                throw error(key, "must be a string");
            }
            return (String) value;
        }

        @SuppressWarnings("unchecked")
        List<Object> list(String key) {
            Object value = get(key);
            if (!(value instanceof List)) {
                throw error(key, "must be a list");
            }
            return (List<Object>) value;
        }

        int nonNegativeInt(String key) {
            Object value = get(key);
            if (!(value instanceof Double)) {
                throw error(key, "must be a number");
            }
            double d = (Double) value;
            if (d != Math.rint(d) || d < 0 || d > Integer.MAX_VALUE) {
                throw error(key, value + " must be a non-negative integer");
            }
            return (int) d;
        }

        int positiveInt(String key) {
            int value = nonNegativeInt(key);
            if (value == 0) {
                throw error(key, "must be positive");
            }
            return value;
        }

        int multiple(String key, int align, boolean positive) {
            int value = positive ? positiveInt(key) : nonNegativeInt(key);
            if (value % align != 0) {
                throw error(key, value + " must be a multiple of align (" + align + ")");
            }
            return value;
        }

        IllegalArgumentException error(String key, String message) {
            return new IllegalArgumentException(source + ": field \"" + prefix + key + "\" " + message);
        }
    }
}
