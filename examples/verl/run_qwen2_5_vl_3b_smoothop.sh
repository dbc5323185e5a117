#!/usr/bin/env bash
# Smooth Operator + Spatial-GRPO on verl 0.9.1: Qwen2.5-VL-3B-Instruct, one node of 8 GPUs, vLLM
# rollouts, AP-GRPO (eq. 8) on SNRA with the sigmoid sharpness schedule k 1 -> 100 (eq. 2, 5),
# the view-consistency penalty on the accuracy across mirror pairs (SVQA-R1 eq. 2-4), pairs kept
# together by spatialrl's sampler with shuffle on, and spatialrl's pixel budget. docs/verl.md.
#
# In verl's environment (verl 0.9.1, its transformers < 5.11, vLLM), with spatialrl's core:
#   pip install 'spatialrl[verl] @ git+<this repository>'      (or: pip install -e '.[verl]')
# Data (the export's frames are already sized to the budget below):
#   spatialrl data build --source scannet --root data/scannet --out runs/data/scannet-n3d-verl \
#     --samples 25000 --pixels-from configs/smoothop_qwen2_5_vl_3b.yaml --format verl --workers 16
# Then: bash examples/verl/run_qwen2_5_vl_3b_smoothop.sh [more overrides]
# Several nodes: start a Ray cluster (`ray start --head` on one node, `ray start --address=HEAD:6379`
# on the others), then run this on the head with trainer.nnodes=N.
#
# The overrides are one per line (tests_verl/test_examples.py composes them against verl's config).
set -euo pipefail
DATA=${DATA:-runs/data/scannet-n3d-verl}
MODEL=${MODEL:-Qwen/Qwen2.5-VL-3B-Instruct}

python -m spatialrl.integrations.verl \
    data.train_files=$DATA/train.parquet \
    data.val_files=$DATA/test.parquet \
    data.image_key=images \
    data.train_batch_size=64 \
    data.max_prompt_length=1024 \
    data.max_response_length=1024 \
    data.shuffle=true \
    data.filter_overlong_prompts=false \
    +data.mm_processor_kwargs.min_pixels=3136 \
    +data.mm_processor_kwargs.max_pixels=401408 \
    actor_rollout_ref.model.path=$MODEL \
    actor_rollout_ref.model.enable_gradient_checkpointing=true \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.optim.weight_decay=0.01 \
    actor_rollout_ref.actor.ppo_mini_batch_size=32 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.actor.use_kl_loss=true \
    actor_rollout_ref.actor.kl_loss_coef=0.02 \
    actor_rollout_ref.actor.clip_ratio=0.2 \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.5 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    +actor_rollout_ref.rollout.limit_images=16 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
    algorithm.adv_estimator=ap_grpo \
    algorithm.use_kl_in_reward=false \
    +algorithm.spatialrl.alpha=1.0 \
    +algorithm.spatialrl.clip=1.5 \
    +algorithm.spatialrl.eps=1e-6 \
    reward.reward_manager.source=importlib \
    reward.reward_manager.module.path=pkg://spatialrl.integrations.verl \
    reward.reward_manager.name=SpatialRLRewardManager \
    +spatialrl.sharpness_kind=sigmoid \
    +spatialrl.k_min=1.0 \
    +spatialrl.k_max=100.0 \
    +spatialrl.tau=0.5 \
    +spatialrl.steepness=10.0 \
    '+spatialrl.rewards={accuracy: 0.9, format: 0.1}' \
    +spatialrl.consistency_reward=accuracy \
    +spatialrl.mirror_pairs=true \
    trainer.n_gpus_per_node=8 \
    trainer.nnodes=1 \
    trainer.total_epochs=1 \
    trainer.project_name=spatialrl \
    trainer.experiment_name=qwen2_5_vl_3b_smoothop_verl \
    trainer.logger='[console]' \
    "$@"
