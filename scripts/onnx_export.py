"""Writes the MiniLM sentence model (BERT weights in safetensors) as an ONNX graph.

Build time only: scripts/prepare_models.py calls it for `make install`, and the
assistant's featurizer (components/minilm_featurizer.py) runs the graph with ONNX
Runtime, without `onnx` itself.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Text

import numpy as np

ONNX_OPSET = 17  # the first with LayerNormalization


class GraphWriter:
    """Collects ONNX nodes and weights; each node's output is named after the node."""

    def __init__(self) -> None:
        self.nodes: List[Any] = []
        self.weights: List[Any] = []

    def const(self, name: Text, value: Any) -> Text:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: Text, *inputs: Text, **attributes: Any) -> Text:
        from onnx import helper

        output = f"{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, list(inputs), [output], **attributes))
        return output


def bert_graph(weights_dir: Text) -> bytes:
    """A BERT encoder (inference only) as a serialized ONNX model.

    Inputs `input_ids` (int64) and `attention_mask` (float32), both (batch, length);
    output `hidden`, the last hidden states (batch, length, width).
    """
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    config = json.loads((Path(weights_dir) / "config.json").read_text())
    weights: Dict[Text, np.ndarray] = load_file(str(Path(weights_dir) / "model.safetensors"))
    heads, width = config["num_attention_heads"], config["hidden_size"]
    head_width = width // heads
    g = GraphWriter()

    def dense(x: Text, name: Text) -> Text:
        # PyTorch stores (out, in); MatMul wants (in, out).
        matrix = g.const(f"{name}.weight", np.ascontiguousarray(weights[f"{name}.weight"].T))
        return g.node("Add", g.node("MatMul", x, matrix), g.const(f"{name}.bias", weights[f"{name}.bias"]))

    def layer_norm(x: Text, name: Text) -> Text:
        scale = g.const(f"{name}.weight", weights[f"{name}.weight"])
        return g.node("LayerNormalization", x, scale, g.const(f"{name}.bias", weights[f"{name}.bias"]),
                      axis=-1, epsilon=config["layer_norm_eps"])

    def scalar(name: Text, value: Any, dtype: Any = np.float32) -> Text:
        return g.const(name, np.array(value, dtype))

    length = g.node("Gather", g.node("Shape", "input_ids"), scalar("one_i", 1, np.int64), axis=0)
    positions = g.node("Range", scalar("zero_i", 0, np.int64), length, scalar("step_i", 1, np.int64))
    x = g.node("Add", g.node("Gather", g.const("words", weights["embeddings.word_embeddings.weight"]), "input_ids"),
               g.node("Gather", g.const("positions", weights["embeddings.position_embeddings.weight"]), positions))
    x = g.node("Add", x, g.const("token_type", weights["embeddings.token_type_embeddings.weight"][0]))
    x = layer_norm(x, "embeddings.LayerNorm")

    # Padding gets the same large negative bias as the TensorFlow model.
    padding = g.node("Mul", g.node("Sub", scalar("one", 1.0), "attention_mask"), scalar("minus_large", -10000.0))
    padding = g.node("Unsqueeze", padding, g.const("head_axes", np.array([1, 2], np.int64)))
    split_heads = g.const("split_heads", np.array([0, 0, heads, head_width], np.int64))
    merge_heads = g.const("merge_heads", np.array([0, 0, width], np.int64))
    for index in range(config["num_hidden_layers"]):
        name = f"encoder.layer.{index}"
        query, key, value = (
            g.node("Reshape", dense(x, f"{name}.attention.self.{part}"), split_heads)
            for part in ("query", "key", "value")
        )
        scores = g.node("MatMul", g.node("Transpose", query, perm=[0, 2, 1, 3]),
                        g.node("Transpose", key, perm=[0, 2, 3, 1]))
        scores = g.node("Add", g.node("Mul", scores, scalar(f"scale{index}", 1 / np.sqrt(head_width))), padding)
        context = g.node("MatMul", g.node("Softmax", scores, axis=-1), g.node("Transpose", value, perm=[0, 2, 1, 3]))
        context = g.node("Reshape", g.node("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        x = layer_norm(g.node("Add", x, dense(context, f"{name}.attention.output.dense")),
                       f"{name}.attention.output.LayerNorm")
        hidden = dense(x, f"{name}.intermediate.dense")
        # Exact GELU: 0.5 h (1 + erf(h / sqrt 2)).
        erf = g.node("Erf", g.node("Div", hidden, scalar(f"sqrt2_{index}", np.sqrt(2.0))))
        half = g.node("Mul", hidden, scalar(f"half{index}", 0.5))
        gelu = g.node("Mul", half, g.node("Add", erf, scalar(f"one{index}", 1.0)))
        x = layer_norm(g.node("Add", x, dense(gelu, f"{name}.output.dense")), f"{name}.output.LayerNorm")
    g.nodes[-1].output[0] = "hidden"

    graph = helper.make_graph(
        g.nodes, "minilm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", width])],
        g.weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    return model.SerializeToString()
