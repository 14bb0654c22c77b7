"""fmops: the life of fine-tuned models on Amazon SageMaker and Bedrock, as small Lambda use cases.

Import the submodule you need (``fmops.lifecycle.training``...): nothing heavy is imported here, so a
handler's cold start only pays for what it uses.
"""

__version__ = "0.1.0"
