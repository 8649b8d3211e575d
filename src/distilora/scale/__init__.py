"""Scale-out: corpus scoring on Ray. It wraps the same Classifier and file prediction the single-process commands
use, and is imported by none of the rooms below it."""
