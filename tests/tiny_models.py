"""Tiny models the tests and notebooks build and save locally: offline stand-ins for Hub models (not part of archnb)."""

from pathlib import Path


def save_tiny_llama(folder, n_layers=4, hidden_size=32, heads=4, kv_heads=2, seed=0) -> Path:
    "Save a tiny random Llama (grouped-query attention) with archnb's byte tokenizer to `folder`."
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from archnb.data import bytes_tokenizer, hf_tokenizer

    torch.manual_seed(seed)
    tok = hf_tokenizer(bytes_tokenizer())
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder)
