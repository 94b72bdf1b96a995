"""Plots render off-screen."""

import matplotlib

matplotlib.use("Agg")
