"""Latent variables: Gaussian posteriors, quantizers (VQ, FSQ), priors."""
