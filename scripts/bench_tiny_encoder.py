"""The tiny-encoder comparison: ``EncoderClassifier.predict_proba`` and ``predict`` against
``transformers.pipeline`` on the same random tiny BERT, texts and batch size (the encoder backend's
own inference path; throughput does not depend on the weights). ``run(results)`` adds
``results["tiny_encoder"]``; scripts/benchmark.py calls it.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_common import compared


def bench_tiny_encoder(titles: list[str], tokenizer_texts: list[str], batch_size: int, repeats: int) -> dict[str, Any]:
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from disinfo_clf import load_model, predict
    from disinfo_clf.models.meta import MULTI_LABEL, ModelMeta
    from disinfo_clf.models.encoder import EncoderClassifier, load_pretrained_encoder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny encoder is a test tool
    from tiny_encoder import build_tiny_encoder
    from disinfo_clf.resources import ROLE_MODEL_DIR
    from disinfo_clf.taxonomy import load_taxonomy

    hf_logging.set_verbosity_error()  # the fresh head's load report and weight-loading bars are expected
    hf_logging.disable_progress_bar()
    labels = load_taxonomy().ids
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_encoder(Path(tmp, "base"), texts=tokenizer_texts, vocab_size=8000)
        tokenizer, model = load_pretrained_encoder(str(base), local_files_only=True, labels=labels, problem_type=MULTI_LABEL)
        meta = ModelMeta(backend="encoder", task="narrative", labels=labels, problem_type=MULTI_LABEL, max_length=128)
        directory = Path(tmp, "model")
        EncoderClassifier(model, tokenizer, meta).save_pretrained(directory)
        os.symlink(ROLE_MODEL_DIR, directory / "role")
        ours = EncoderClassifier.from_pretrained(directory, device="cpu")
        pipe = pipeline("text-classification", model=str(directory), top_k=None, device=-1)
        loaded = load_model(directory)
        for warm in (lambda: ours.predict_proba(titles[:128], batch_size=batch_size),
                     lambda: pipe(titles[:128], batch_size=batch_size),
                     lambda: predict(titles[:128], model=loaded, batch_size=batch_size)):
            warm()
        rates = compared({
            "predict_proba": lambda: ours.predict_proba(titles, batch_size=batch_size),
            "pipeline": lambda: pipe(titles, batch_size=batch_size),
            "predict": lambda: predict(titles, model=loaded, batch_size=batch_size),
        }, len(titles), repeats)
        proba, piped, full = rates["predict_proba"], rates["pipeline"], rates["predict"]
    return {
        "encoder": "tiny BERT (2 layers, hidden 128, WordPiece 8k), 18 narrative labels, untrained head "
                   "(throughput does not depend on the weights)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "n_texts": len(titles),
        "batch_size": batch_size,
        "encoder_predict_proba_per_s": proba["per_s"],
        "pipeline_per_s": piped["per_s"],
        "predict_per_s": full["per_s"],
        "ratio_predict_proba_vs_pipeline": round(proba["per_s"] / piped["per_s"], 2),
        "ratio_predict_vs_pipeline": round(full["per_s"] / piped["per_s"], 2),
        "runs_per_s": {"predict_proba": proba["runs_per_s"], "pipeline": piped["runs_per_s"], "predict": full["runs_per_s"]},
        "note": "predict also runs sentence windows, the linear role model and language detection; "
                "the pipeline gives narrative scores only",
    }



def run(results: dict[str, Any], titles: list[str], tokenizer_texts: list[str], repeats: int) -> None:
    """Add ``results["tiny_encoder"]``."""
    results["tiny_encoder"] = bench_tiny_encoder(titles, tokenizer_texts, 64, repeats)
