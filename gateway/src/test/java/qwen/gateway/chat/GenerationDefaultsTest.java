package qwen.gateway.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** generation_config.json of Qwen-1_8B-Chat (SPEC 5.1). */
class GenerationDefaultsTest {

    @Test
    void bundledConfigHoldsQwenDefaults() {
        assertEquals(new GenerationDefaults("chatml", 151643, 151643, 6144, 512, true, 0, 0.8, 1.1, 1.0),
                GenerationDefaults.bundled());
    }

    @Test
    void temperatureIsReadWhenPresent() throws IOException {
        GenerationDefaults defaults = parse("""
                {"chat_format": "chatml", "eos_token_id": 151643, "pad_token_id": 151643,
                 "max_window_size": 2048, "max_new_tokens": 64, "do_sample": false, "top_k": 5,
                 "top_p": 1.0, "repetition_penalty": 1.0, "temperature": 0.7}""");
        assertEquals(0.7, defaults.temperature());
        assertEquals(2048, defaults.maxWindowSize());
        assertEquals(5, defaults.topK());
    }

    @Test
    void missingKeyIsNamed() {
        IOException e = assertThrows(IOException.class, () -> parse("""
                {"chat_format": "chatml", "eos_token_id": 151643, "pad_token_id": 151643,
                 "max_new_tokens": 512, "do_sample": true, "top_k": 0, "top_p": 0.8,
                 "repetition_penalty": 1.1}"""));
        assertTrue(e.getMessage().contains("max_window_size"), e.getMessage());
    }

    @Test
    void wrongTypeIsNamed() {
        IOException e = assertThrows(IOException.class, () -> parse("""
                {"chat_format": "chatml", "eos_token_id": 151643, "pad_token_id": 151643,
                 "max_window_size": 6144, "max_new_tokens": "512", "do_sample": true, "top_k": 0,
                 "top_p": 0.8, "repetition_penalty": 1.1}"""));
        assertTrue(e.getMessage().contains("max_new_tokens"), e.getMessage());
    }

    @Test
    void rawChatFormatIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> parse("""
                {"chat_format": "raw", "eos_token_id": 151643, "pad_token_id": 151643,
                 "max_window_size": 6144, "max_new_tokens": 512, "do_sample": true, "top_k": 0,
                 "top_p": 0.8, "repetition_penalty": 1.1}"""));
    }

    private static GenerationDefaults parse(String json) throws IOException {
        return GenerationDefaults.parse(new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)), "test");
    }
}
