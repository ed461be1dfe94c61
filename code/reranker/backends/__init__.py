"""Model backends: each turns padded int64 batches into logits ``[rows, labels]``."""
