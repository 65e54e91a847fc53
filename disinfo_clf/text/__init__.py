"""Text handling every stage shares: decoding bytes and HTML, sentences and prediction windows,
language detection and the en/other language groups, dates, and the EUvsDisinfo vocabulary."""
