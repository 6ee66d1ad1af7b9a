"""Schedules, the persisted job scheduler and the background loops `imagedex up` runs."""
