"""Latent variables: Gaussian posteriors, vector quantizers, priors."""
