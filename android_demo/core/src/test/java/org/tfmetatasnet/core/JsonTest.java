package org.tfmetatasnet.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The strict JSON parser. */
public class JsonTest {
    @Test
    public void parsesEveryKindOfValue() {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) Json.parse(
                " {\"a\": [1, -2.5e3, 0.125, true, false, null], \"s\": \"x\\\"\\\\\\/\\n\\u00e9\", \"o\": {}} ", "t");
        List<?> a = (List<?>) m.get("a");
        assertEquals(Arrays.asList(1.0, -2500.0, 0.125, true, false, null), a);
        assertEquals("x\"\\/\n\u00e9", m.get("s"));
        assertTrue(((Map<?, ?>) m.get("o")).isEmpty());
        assertNull(Json.parse("null", "t"));
    }

    @Test
    public void rejectsWhatIsNotJson() {
        for (String bad : new String[] {"", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "NaN", "01", "1.", "-",
                "[1] 2", "{\"a\":1,\"a\":2}", "\"tab\there\"", "// c\n1", "tru", "[1 2]", "\"\\x\""}) {
            IllegalArgumentException e = assertThrows(bad, IllegalArgumentException.class, () -> Json.parse(bad, "f.json"));
            assertTrue(e.getMessage(), e.getMessage().startsWith("f.json: invalid JSON at offset "));
        }
    }
}
