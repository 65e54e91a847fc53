"""A tiny, randomly initialised BERT-style encoder with a tokenizer trained on our own corpus.

It stands in for a pretrained encoder where none can be downloaded (tests, offline machines,
quick experiments): the directory it writes loads through the ordinary
``AutoTokenizer``/``AutoModelForSequenceClassification.from_pretrained`` path, like any
encoder from the Hugging Face Hub.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_encoder(
    output_dir: str | Path,
    *,
    texts: Iterable[str],
    vocab_size: int = 8000,
    hidden_size: int = 128,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 256,
    max_position_embeddings: int = 512,
    seed: int = 42,
    prompts: dict[str, str] | None = None,
) -> Path:
    """Train a WordPiece tokenizer on ``texts`` (for example ``datasets.corpus_texts()``), build a small
    randomly initialised BERT encoder (seeded) and save both to ``output_dir``.

    ``prompts`` go into ``config_sentence_transformers.json`` (default: E5's ``query`` and
    ``passage`` prompts, so that texts are read as with the real encoder; ``{}`` writes none).
    Returns the directory, ready for ``EncoderConfig.model_name_or_path``.
    """
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, set_seed

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    # Lower-cased but accent-preserving: the corpus names people and places in many languages.
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2, show_progress=sys.stderr.isatty()
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_position_embeddings,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    fast.save_pretrained(output_dir)

    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    set_seed(seed)
    with torch.device("cpu"):
        model = BertModel(config)
    model.save_pretrained(output_dir)
    if prompts is None:
        prompts = {"query": "query: ", "passage": "passage: "}
    if prompts:
        (output_dir / "config_sentence_transformers.json").write_text(
            json.dumps({"prompts": prompts, "default_prompt_name": None}, indent=2), encoding="utf-8")
    logger.info(
        "tiny encoder written to %s (vocabulary %d, %d parameters)",
        output_dir, config.vocab_size, sum(p.numel() for p in model.parameters()),
    )
    return output_dir


if __name__ == "__main__":  # python tests/tiny_encoder.py DIR: the encoder configs/tiny-encoder.yaml trains on
    from disinfo_clf.data.corpus import corpus_texts

    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_encoder.py OUTPUT_DIR")
    print(build_tiny_encoder(sys.argv[1], texts=corpus_texts()))
