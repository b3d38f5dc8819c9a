"""Optional vLLM engine for Qwen2-Audio (+ a LoRA adapter on the language model), where vLLM and a GPU exist.

vLLM expands `<|AUDIO|>` itself from the audio it is given, so prompts are the chat template's text as is.
Not exercised by the CPU test suite (no vLLM, no GPU there); the transformers engine is the reference.
"""

from pathlib import Path

from auralign.errors import ConfigError
from auralign.models.acc.qwen2audio import to_qwen_messages
from auralign.models.base import Chat, GenerationOptions, load_wave


class VllmQwen2Audio:
    def __init__(
        self, model: str, adapter: str | Path | None = None, max_audios: int = 2, lora_rank: int = 8
    ) -> None:
        try:
            from transformers import AutoProcessor
            from vllm import LLM
        except ImportError:
            raise ConfigError(
                "engine vllm: vLLM is not installed (pip install vllm, on a machine with a GPU)"
            ) from None
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("engine vllm: needs a CUDA GPU; use --engine transformers on this machine")
        self.processor = AutoProcessor.from_pretrained(model)
        self.adapter = str(adapter) if adapter else None
        self.origin = {"model": model, "adapter": self.adapter}  # names it in caption journals' origin
        self.llm = LLM(
            model=model,
            max_model_len=8192,
            limit_mm_per_prompt={"audio": max_audios},
            enable_lora=self.adapter is not None,
            max_lora_rank=lora_rank,
        )

    def generate(self, chats: list[Chat], options: GenerationOptions) -> list[str]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        params = SamplingParams(
            max_tokens=options.max_new_tokens,
            temperature=options.temperature if options.do_sample else 0.0,
            top_p=options.top_p if options.do_sample else 1.0,
            seed=options.seed,
        )
        if options.num_beams > 1:
            raise ConfigError("engine vllm: beam search is not supported here; use --engine transformers")
        requests = []
        for chat in chats:
            text = self.processor.apply_chat_template(
                to_qwen_messages(chat.messages), add_generation_prompt=True, tokenize=False
            )
            audio = [(load_wave(a), 16000) for a in chat.audios]
            requests.append({"prompt": text, "multi_modal_data": {"audio": audio}})
        lora = LoRARequest("adapter", 1, self.adapter) if self.adapter else None
        outputs = self.llm.generate(requests, params, lora_request=lora)
        return [o.outputs[0].text.strip() for o in outputs]

    def eval(self) -> "VllmQwen2Audio":
        return self
