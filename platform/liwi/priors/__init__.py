"""Pretrained priors: networks we did not train, used as they ship (salient-object maps)."""
