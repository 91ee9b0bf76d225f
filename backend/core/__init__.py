"""Pure numerics: data, the model, its step, evaluation, sampling. No I/O, no threads."""
