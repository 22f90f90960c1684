package qwen.service.model;

/** Published Qwen-1 config files, verbatim, for tests that need the real fields and values. */
public final class PublishedConfigs {

    /** Qwen-1_8B-Chat's config.json as re-saved by transformers 4.37.2 (SPEC source S2), verbatim. */
    public static final String QWEN_1_8B_CHAT = """
        {
          "architectures": [
            "QWenLMHeadModel"
          ],
          "attn_dropout_prob": 0.0,
          "auto_map": {
            "AutoConfig": "configuration_qwen.QWenConfig",
            "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"
          },
          "bf16": true,
          "emb_dropout_prob": 0.0,
          "fp16": false,
          "fp32": false,
          "hidden_size": 2048,
          "initializer_range": 0.02,
          "intermediate_size": 11008,
          "kv_channels": 128,
          "layer_norm_epsilon": 1e-06,
          "max_position_embeddings": 8192,
          "model_type": "qwen",
          "no_bias": true,
          "num_attention_heads": 16,
          "num_hidden_layers": 24,
          "onnx_safe": null,
          "rotary_emb_base": 10000,
          "rotary_pct": 1.0,
          "scale_attn_weights": true,
          "seq_length": 8192,
          "softmax_in_fp32": false,
          "tie_word_embeddings": false,
          "tokenizer_class": "QWenTokenizer",
          "torch_dtype": "bfloat16",
          "transformers_version": "4.37.2",
          "use_cache": true,
          "use_cache_kernel": false,
          "use_cache_quantization": false,
          "use_dynamic_ntk": true,
          "use_flash_attn": true,
          "use_logn_attn": true,
          "vocab_size": 151936
        }
        """;

    private PublishedConfigs() {
    }
}
