"""Tiny random-weight encoders written by the tests themselves (no download): for loading and batching tests only.

Nothing here says anything about the quality of a metric: the weights are random.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ["не", "могу", "оплатить", "заказ", "картой", "карта", "заблокирована", "деньги", "вернуть", "когда",
         "возврат", "списали", "дважды", "подписка", "промокод", "доставка", "опаздывает", "смс", "код", "приходит"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    return path


def bert_config(**over):
    from transformers import BertConfig

    kw = dict(vocab_size=len(SPECIAL) + len(WORDS), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
              intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)
    kw.update(over)
    return BertConfig(**kw)


def tiny_bert_encoder(folder: Path, seed: int = 0) -> Path:
    """A 3-layer BERT encoder folder with a WordPiece vocab and a tokenizer config, as bert-score loads it."""
    import torch
    from transformers import BertModel, BertTokenizerFast

    write_vocab(folder)
    BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=False, model_max_length=64).save_pretrained(
        folder)
    torch.manual_seed(seed)
    BertModel(bert_config()).save_pretrained(folder)
    return folder


def port_config(cfg, embedding_size: int | None = None) -> dict:
    """A config.json in the bleurt-pytorch port's format for a BERT-shaped config."""
    return {"model_type": "bleurt", "architectures": ["BleurtForSequenceClassification"],
            "vocab_size": cfg.vocab_size, "embedding_size": embedding_size, "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size, "hidden_act": "gelu",
            "max_position_embeddings": cfg.max_position_embeddings, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
            "pad_token_id": 0, "num_labels": 1}


def tiny_bleurt_from_bert(folder: Path, seed: int = 0):
    """A port-format BLEURT checkpoint (no embedding projection) whose weights are those of a random
    ``BertForSequenceClassification``; returns that BERT model, which must score identically."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertForSequenceClassification

    write_vocab(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))  # uncased strips й
    torch.manual_seed(seed)
    bert = BertForSequenceClassification(bert_config(num_labels=1)).eval()
    state = {k.replace("bert.", "bleurt.", 1): v.contiguous() for k, v in bert.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(port_config(bert.config)))
    return bert


def tiny_bleurt_projected(folder: Path, seed: int = 1) -> None:
    """A port-format checkpoint with a narrower input embedding (``embedding_size``), as BLEURT-20 has; the weights
    are random, written under the port's names (``bleurt.encoder.embedding_projection``)."""
    import torch
    from safetensors.torch import save_file
    from transformers import RemBertConfig, RemBertForSequenceClassification

    write_vocab(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))  # uncased strips й
    base = bert_config()
    torch.manual_seed(seed)
    model = RemBertForSequenceClassification(RemBertConfig(
        vocab_size=base.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        input_embedding_size=16, output_embedding_size=16, intermediate_size=64, max_position_embeddings=64,
        num_labels=1))
    state = {}
    for k, v in model.state_dict().items():
        k = k.replace("rembert.encoder.embedding_hidden_mapping_in.", "bleurt.encoder.embedding_projection.")
        state[k.replace("rembert.", "bleurt.", 1)] = v.contiguous()
    save_file(state, str(folder / "model.safetensors"))
    cfg = port_config(base, embedding_size=16) | {"num_hidden_layers": 2}
    (folder / "config.json").write_text(json.dumps(cfg))


def tiny_causal_lm(folder: Path) -> Path:
    """A 2-layer random GPT-2 with a word-level tokenizer that prepends <bos> (a causal LM for the hf scorer)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16, n_layer=2, n_head=2,
                               bos_token_id=2, eos_token_id=2, pad_token_id=0)).save_pretrained(folder)
    return folder
