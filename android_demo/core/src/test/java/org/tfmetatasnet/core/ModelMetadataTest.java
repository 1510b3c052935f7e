package org.tfmetatasnet.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** Metadata reading: the contract's fields, and errors that name the file and the field. */
public class ModelMetadataTest {
    private static final String GOOD = Vectors.text("fake_model.json");

    @Test
    public void readsTheContractsFields() {
        ModelMetadata m = ModelMetadata.parse(GOOD, "vocals_float32.json");
        assertEquals("vocals", m.instrument);
        assertEquals("float32", m.quantization);
        assertEquals(8000, m.baseRate);
        assertEquals(32000, m.outputRate);
        assertEquals(1000, m.chunk);
        assertEquals(300, m.context);
        assertEquals(200, m.overlap);
        assertEquals(1600, m.window);
        assertEquals(20, m.align);
        assertArrayEquals(new int[] {1, 2, 4}, m.inputFactors());
        assertEquals("mixture_16000", m.inputs.get(1).name);
        assertEquals(6400, m.inputs.get(2).length);
        assertEquals(4, m.output.factor);
        assertEquals(4, m.sources.size());
    }

    @Test
    public void inputsFollowTheirIndexNotTheListOrder() {
        ModelMetadata m = ModelMetadata.parse(Vectors.text("fake_model_reordered.json"), "reordered.json");
        assertArrayEquals(new int[] {4, 1, 2}, m.inputFactors());
        assertEquals("mixture_32000", m.inputs.get(0).name);
        assertEquals(0, new InstrumentSeparator(m, null).outputScaleInput());
        assertEquals(2, new InstrumentSeparator(ModelMetadata.parse(GOOD, "good.json"), null).outputScaleInput());
    }

    private static void assertRejected(String json, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelMetadata.parse(json, "bass_int8.json"));
        assertTrue(e.getMessage(), e.getMessage().startsWith("bass_int8.json: "));
        for (String fragment : fragments) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }

    @Test
    public void namesTheBadField() {
        assertRejected(GOOD.replace("\"window\": 1600", "\"window\": 1620"), "\"window\"", "chunk + 2 x context");
        assertRejected(GOOD.replace("\"chunk\": 1000", "\"chunk\": 1010"), "\"chunk\"", "multiple of align");
        assertRejected(GOOD.replace("\"overlap\": 200", "\"overlap\": 1000"), "\"overlap\"");
        assertRejected(GOOD.replace("tf_metatasnet.tflite/1", "tf_metatasnet.tflite/9"), "\"format\"");
        assertRejected(GOOD.replace("\"base_rate\": 8000,", ""), "\"base_rate\" is missing");
        assertRejected(GOOD.replace("\"instrument\": \"vocals\"", "\"instrument\": \"kazoo\""), "\"instrument\"");
        assertRejected(GOOD.replace("6400", "6000"), "inputs[2].shape\"", "[1, 6400]");
        assertRejected(GOOD.replace("\"sample_rate\": 16000", "\"sample_rate\": 16001"), "\"inputs[1].sample_rate\"");
        assertRejected(GOOD.replaceFirst("\"dtype\": \"float32\"", "\"dtype\": \"int8\""), "\"inputs[0].dtype\"");
        assertRejected("[1, 2]", "must be a JSON object");
        assertRejected(GOOD + "x", "invalid JSON");
    }
}
