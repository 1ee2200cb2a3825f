"""Policy profiles: the rules of each jurisdiction, as validated data."""

from roomwatch.core.policy.loader import ProfileError, available_profiles, load_profile
from roomwatch.core.policy.model import PolicyProfile, StudentBand

__all__ = ["PolicyProfile", "ProfileError", "StudentBand", "available_profiles", "load_profile"]
