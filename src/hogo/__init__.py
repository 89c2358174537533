"""hogo (保護): personal data kept inside, every safety management measure (安全管理措置) enforced."""

__version__ = "0.1.0"
