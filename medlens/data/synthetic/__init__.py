"""Synthetic ground truth: generators and simulators whose answer is known (lesions, head-CT phantoms, EEG, fMRI, oscillators, neurons, slides, reports)."""
