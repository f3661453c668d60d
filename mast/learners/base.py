"""The value-learner family's shared machinery, read top to bottom in :meth:`train`.

One training iteration on a batch of episodes ``[B, T(+1), ...]`` (buffer layout):

1. unroll the online agents over the episodes -> ``Q_i(o_t, .)``; pick the taken actions;
2. mix them into ``Q_tot(s_t, u_t)``;
3. bootstrap: the *target* agents' next-state Q-values are reduced per agent (max,
   double-Q or Soft Mellowmax, ``mast.targets.bootstrap_values``) and mixed by the target
   mixer into ``v_tp1``; ``mast.targets.make_targets`` turns rewards and ``v_tp1`` into
   one-step / n-step / TD(lambda) / hybrid targets ``y_t``;
4. masked TD loss (subclasses change steps 3-4: weighted QMIX, RES);
5. optimise under the sparsity manager: dense gradients reach it, it masks them or evolves
   the topology (then the optimizer step is skipped), masks are re-applied to the online
   and target networks;
6. hard target update every ``target_update_interval`` episodes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from mast.agents import LayerSpec, RNNAgent
from mast.config import TrainConfig
from mast.controllers import AgentController
from mast.errors import UserError
from mast.mixers import MIXERS
from mast.nonfinite import check_scalars
from mast.sparsity import SparseLayer, SparsityConfig, SparsityManager, tiny_width
from mast.sparsity.manager import TopologyUpdate
from mast.targets import bootstrap_values, make_targets

__all__ = ["ValueLearner", "TrainStats", "Batch"]

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainStats:
    """What one training iteration reports."""

    loss: float
    """Total loss."""
    td_error_abs: float
    """Mean absolute TD error over valid steps."""
    q_taken_mean: float
    """Mean ``Q_tot`` of the taken joint actions."""
    target_mean: float
    """Mean target ``y``."""
    grad_norm: float
    """Gradient norm before clipping (0 on a skipped step)."""
    update: TopologyUpdate | None
    """The topology update of this iteration, if any."""


class ValueLearner:
    """VDN / QMIX learner; the base of weighted QMIX and RES.

    Parameters
    ----------
    cfg:
        The full training configuration.
    env_info:
        ``get_env_info()`` of the environment (plus optional ``agent_types``).
    """

    def __init__(self, cfg: TrainConfig, env_info: dict) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.run.device)
        self.n_agents, self.n_actions = env_info["n_agents"], env_info["n_actions"]
        self.state_dim, self.obs_dim = env_info["state_shape"], env_info["obs_shape"]
        self.agent_types = self._agent_types(env_info)
        self.width_scale = self._tiny_scale()
        # --- networks: everything trainable lives in one ModuleDict (names = mask keys)
        self.nets = nn.ModuleDict(self.build_networks(self.width_scale)).to(self.device)
        self.sparsity = SparsityManager(cfg.sparsity)
        for name, spec in self.layer_specs().items():
            self.sparsity.register(
                name,
                self.nets.get_parameter(name),
                role=spec.role,
                uses_per_env_step=spec.uses_per_env_step,
                uses_per_sample=spec.uses_per_sample,
                inputs=spec.inputs,
                recurrent=spec.recurrent,
            )
        self.sparsity.build()
        self.target = copy.deepcopy(self.nets)
        self.controller = self._controller(self.nets["agent"])
        self.target_controller = self._controller(self.target["agent"])
        self.params = list(self.nets.parameters())
        lc = cfg.learner
        self.optimizer = torch.optim.RMSprop(
            self.params, lr=lc.lr, alpha=lc.optim_alpha, eps=lc.optim_eps
        )
        self.last_target_update_episode = 0
        self.train_steps = 0

    # ------------------------------------------------------------------ construction
    def _agent_types(self, env_info: dict) -> list[int] | None:
        """Weight-slice index of every agent for ``agent.topology`` (``None``: shared)."""
        topology = self.cfg.agent.topology
        if topology == "shared":
            return None
        if topology == "per_agent":
            return list(range(self.n_agents))
        types = env_info.get("agent_types")
        if types is None:
            raise UserError("agent.topology=per_type needs an environment that reports agent_types")
        return [int(t) for t in types]

    def _input_dim(self) -> int:
        a = self.cfg.agent
        return AgentController.input_dim(
            self.obs_dim, self.n_agents, self.n_actions, a.obs_last_action, a.obs_agent_id
        )

    def _agent(self, scale: float) -> RNNAgent:
        return RNNAgent(
            self._input_dim(),
            self.n_actions,
            self.n_agents,
            max(1, round(self.cfg.agent.hidden_dim * scale)),
            self.agent_types,
        )

    def build_networks(self, scale: float = 1.0) -> dict[str, nn.Module]:
        """Online networks by name at a width ``scale`` (``tiny`` shrinks every width)."""
        lc = self.cfg.learner
        mixer_cls = MIXERS[lc.alg if lc.alg in MIXERS else "qmix"]
        if mixer_cls is MIXERS["vdn"]:
            mixer = mixer_cls()
        else:
            mixer = mixer_cls(
                self.n_agents,
                self.state_dim,
                max(1, round(lc.mixing_embed_dim * scale)),
                max(1, round(lc.hypernet_embed * scale)),
            )
        return {"agent": self._agent(scale), "mixer": mixer}

    def layer_specs(self, nets: nn.ModuleDict | None = None) -> dict[str, LayerSpec]:
        """Every weight matrix with its usage, keyed by its name in :attr:`nets`."""
        nets = self.nets if nets is None else nets
        specs = {}
        for key, module in nets.items():
            own = module.layer_specs() if key != "agent" else module.layer_specs("agent")
            for s in own:
                specs[f"{key}.{s.name}"] = LayerSpec(
                    f"{key}.{s.name}",
                    s.role,
                    s.uses_per_env_step,
                    s.uses_per_sample,
                    tuple(f"{key}.{i}" for i in s.inputs),
                    s.recurrent,
                )
        return specs

    def _controller(self, agent: RNNAgent) -> AgentController:
        a = self.cfg.agent
        return AgentController(
            agent, self.n_agents, self.n_actions, a.obs_last_action, a.obs_agent_id
        )

    def _weight_count(self, scale: float) -> int:
        nets = nn.ModuleDict(self.build_networks(scale))
        return sum(nets.get_parameter(n).numel() for n in self.layer_specs(nets))

    def _tiny_scale(self) -> float:
        """Width factor of the ``tiny`` method: dense weights = the sparse target's nnz."""
        if self.cfg.sparsity.method != "tiny":
            return 1.0
        base = self.cfg.agent.hidden_dim
        target = max(1, round((1.0 - self.cfg.sparsity.sparsity) * self._weight_count(1.0)))
        width = tiny_width(lambda w: self._weight_count(w / base), target, max_width=base)
        return width / base

    def reference_layers(self) -> list[SparseLayer]:
        """Dense full-width layers: the FLOPs reference (differs from ours for ``tiny``)."""
        nets = nn.ModuleDict(self.build_networks(1.0))
        mgr = SparsityManager(SparsityConfig(method="dense"))
        for name, spec in self.layer_specs(nets).items():
            mgr.register(
                name,
                nets.get_parameter(name),
                role=spec.role,
                uses_per_env_step=spec.uses_per_env_step,
                uses_per_sample=spec.uses_per_sample,
                inputs=spec.inputs,
                recurrent=spec.recurrent,
            )
        mgr.build()
        return mgr.export_layers()

    # ------------------------------------------------------------------ training
    def train(self, batch: Batch, t_env: int, episode: int) -> TrainStats:
        """One gradient iteration on ``batch`` (buffer layout, any device)."""
        b = {k: v.to(self.device) for k, v in batch.items()}
        actions = b["actions"]  # [B, T, n]
        r_t = b["reward"].unsqueeze(-1)  # [B, T, 1]
        d_t = b["terminated"].float().unsqueeze(-1)
        mask_t = b["filled"].float().unsqueeze(-1)
        actions_in = torch.cat([actions, torch.zeros_like(actions[:, :1])], dim=1)

        # --- 1-2. online Q-values of the taken actions, mixed
        q = self.controller.unroll(b["obs"], actions_in)  # [B, T+1, n, A]
        q_taken = q[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        q_tot = self.nets["mixer"](q_taken, b["state"][:, :-1])

        # --- 3. bootstrapped multi-step targets from the target networks
        with torch.no_grad():
            v_tp1 = self.bootstrap(b, q.detach(), actions_in)
            y = make_targets(self.cfg.targets, r_t, d_t, mask_t, v_tp1, t_env)

        # --- 4. loss
        loss, td = self.loss(b, q, q_tot, y, mask_t, actions_in)

        # --- 5. optimise under the sparsity manager (never on non-finite values)
        check_scalars(
            self.train_steps + 1, loss=float(loss.detach()), q_tot=float(q_tot.detach().sum())
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        check_scalars(
            self.train_steps + 1, grad_norm=float(nn.utils.get_total_norm(grads)) if grads else 0.0
        )
        step = self.sparsity.step(t_env, self.optimizer)
        grad_norm = 0.0
        if not step.skip_optimizer_step:
            grad_norm = float(nn.utils.clip_grad_norm_(self.params, self.cfg.learner.grad_clip))
            self.optimizer.step()
        self.sparsity.apply_()
        if step.update is not None:
            self.sparsity.apply_to_(self.target)
        self.train_steps += 1

        # --- 6. hard target update
        if episode - self.last_target_update_episode >= self.cfg.learner.target_update_interval:
            self.update_targets()
            self.last_target_update_episode = episode

        n_valid = mask_t.sum().clamp(min=1.0)
        return TrainStats(
            loss=float(loss.detach()),
            td_error_abs=float((td.abs() * mask_t).sum() / n_valid),
            q_taken_mean=float((q_tot.detach() * mask_t).sum() / n_valid),
            target_mean=float((y * mask_t).sum() / n_valid),
            grad_norm=grad_norm,
            update=step.update,
        )

    @torch.no_grad()
    def policy_distance(self, batch: Batch) -> float:
        """RLx2's policy distance for discrete actions: the share of the decisions in
        ``batch`` (valid steps, agents with more than one available action) where the
        online agents' greedy action differs from the stored one (0 if there are none)."""
        b = {k: v.to(self.device) for k, v in batch.items()}
        actions = b["actions"]  # [B, T, n]
        actions_in = torch.cat([actions, torch.zeros_like(actions[:, :1])], dim=1)
        q = self.controller.unroll(b["obs"], actions_in)[:, :-1]
        avail = b["avail_actions"][:, :-1]
        greedy = q.masked_fill(~avail, float("-inf")).argmax(-1)
        choice = (avail.sum(-1) > 1) & b["filled"].unsqueeze(-1)
        n = int(choice.sum())
        return float(((greedy != actions) & choice).sum()) / n if n else 0.0

    def bootstrap(self, b: Batch, q_online: torch.Tensor, actions_in: torch.Tensor) -> torch.Tensor:
        """``v_tp1 [B, T, 1]``: per-agent bootstrap of the target agents, target-mixed."""
        q_next = self.target_controller.unroll(b["obs"], actions_in)[:, 1:]
        v_agents = bootstrap_values(
            self.cfg.targets, q_next, q_online[:, 1:], b["avail_actions"][:, 1:]
        )
        return self.target["mixer"](v_agents, b["state"][:, 1:])

    def loss(
        self,
        b: Batch,
        q: torch.Tensor,
        q_tot: torch.Tensor,
        y: torch.Tensor,
        mask_t: torch.Tensor,
        actions_in: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked mean squared TD error; returns ``(loss, td)``."""
        td = (q_tot - y) * mask_t
        return (td**2).sum() / mask_t.sum().clamp(min=1.0), td.detach()

    def update_targets(self) -> None:
        """Copy the online networks into the target networks (masks included)."""
        self.target.load_state_dict(self.nets.state_dict())

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to continue training exactly."""
        return {
            "nets": self.nets.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sparsity": self.sparsity.state_dict(),
            "last_target_update_episode": self.last_target_update_episode,
            "train_steps": self.train_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output of a learner with the same configuration."""
        self.nets.load_state_dict(state["nets"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sparsity.load_state_dict(state["sparsity"])
        self.last_target_update_episode = int(state["last_target_update_episode"])
        self.train_steps = int(state["train_steps"])
