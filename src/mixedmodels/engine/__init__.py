"""The numerical engine: cross-products of [Z X y], the blocked Cholesky factor L(θ), the objective."""

from .crossprod import CrossProducts
from .factor import BlockedCholesky
from .objective import criterion

__all__ = ["CrossProducts", "BlockedCholesky", "criterion"]
