"""Privacy mechanisms below the models: keyed pseudonyms of user IDs, differential-privacy noise
for aggregate counts, retention windows."""
