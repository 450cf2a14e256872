"""The LiteLLM providers an ExternalModel may name.

The router hands `<provider>/<model>` to LiteLLM, which refuses, on every request, a provider it
does not know. Checking the name here turns that into an `InvalidSpec` condition on the resource
and a skipped backend in the router. The operator cannot ask LiteLLM itself: importing it takes
seconds and reaches for the network. The names are LiteLLM 1.97's `litellm.provider_list`; a unit
test fails if the installed LiteLLM no longer knows one of them.
"""

from __future__ import annotations

LITELLM_PROVIDERS: frozenset[str] = frozenset(
    """
    a2a a2a_agent ai21 ai21_chat aiml aiohttp_openai amazon_nova anthropic anthropic_text
    apertis assemblyai auto_router aws_polly azure azure_ai azure_text baseten bedrock
    bedrock_mantle black_forest_labs bytez cerebras charity_engine chatgpt chutes clarifai
    cloudflare codestral cohere cohere_chat cometapi compactifai cursor custom custom_openai
    darkbloom dashscope databricks datarobot deepgram deepinfra deepseek docker_model_runner
    dotprompt elevenlabs empower fal_ai featherless_ai fireworks_ai friendliai galadriel gdc
    gemini gigachat github github_copilot gradient_ai groq helicone heroku hosted_vllm
    huggingface humanloop hyperbolic inception infinity jina_ai lambda_ai langflow langfuse
    langgraph lemonade libertai litellm_agent litellm_proxy llamafile lm_studio manus maritalk
    meta meta_llama milvus minimax mistral modelscope moonshot morph nano-gpt nebius neosantara
    nlp_cloud novita nscale nvidia_nim nvidia_riva oci ollama ollama_chat oobabooga openai
    openai_like openrouter ovhcloud parasail perplexity petals pg_vector pinstripes poe
    predibase publicai ragflow recraft reducto replicate runwayml s3_vectors sagemaker
    sagemaker_chat sagemaker_nova sambanova sap scaleway snowflake soniox stability synthetic
    tencent tensormesh text-completion-codestral text-completion-inception
    text-completion-openai together_ai topaz triton v0 vercel_ai_gateway vertex_ai
    vertex_ai_beta vllm volcengine voyage wandb watsonx watsonx_text xai xiaomi_mimo xinference
    zai
    """.split()  # noqa: SIM905 (a paragraph of names, not 149 lines of one each)
)
