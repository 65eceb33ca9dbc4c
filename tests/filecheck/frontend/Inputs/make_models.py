# Writes the tiny ONNX models the frontend FileCheck tests import (run with the fixtures venv:
# .venv-fixtures/bin/python tests/filecheck/frontend/Inputs/make_models.py).
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def save(model, name, external=False):
    path = os.path.join(HERE, name)
    if external:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, path)


def opset11_model():
    # Older-opset forms the importer upgrades: attribute axes/split and a 2-D coercing Softmax.
    w = numpy_helper.from_array(np.arange(80, dtype=np.float32).reshape(4, 20) / 80, "proj.weight")
    bias = numpy_helper.from_array(np.ones(20, dtype=np.float32), "proj.bias")
    nodes = [
        helper.make_node("MatMul", ["x", "proj.weight"], ["h"], name="/proj/MatMul"),
        helper.make_node("Add", ["h", "proj.bias"], ["hb"], name="/proj/Add"),
        helper.make_node("Unsqueeze", ["hb"], ["u"], name="/Unsqueeze", axes=[1]),
        helper.make_node("Split", ["u"], ["s0", "s1"], name="/Split", axis=2, split=[8, 12]),
        helper.make_node("Softmax", ["s1"], ["p"], name="/Softmax", axis=1),
        helper.make_node("ReduceSum", ["s0"], ["c"], name="/ReduceSum", axes=[-1], keepdims=0),
        helper.make_node("Constant", [], ["k"], name="/Constant", value=helper.make_tensor("k", TensorProto.INT64, [2], [2, 3])),
        helper.make_node("Cast", ["k"], ["kf"], name="/Cast", to=TensorProto.FLOAT16),
    ]
    graph = helper.make_graph(
        nodes, "tiny-opset11",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 1, 12]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("kf", TensorProto.FLOAT16, [2])],
        initializer=[w, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="pagedc-tests")
    model.ir_version = 6
    return model


def external_model():
    # Weights in an external-data file beside the model.
    emb = numpy_helper.from_array(np.arange(96, dtype=np.float32).reshape(12, 8), "embed.weight")
    nodes = [helper.make_node("Gather", ["embed.weight", "ids"], ["e"], name="/embed/Gather", axis=0)]
    graph = helper.make_graph(
        nodes, "tiny_external",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["batch", "seq", 8])],
        initializer=[emb])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="pagedc-tests")
    model.ir_version = 8
    return model


def unsupported_model():
    nodes = [helper.make_node("Foo", ["x"], ["y"], name="/model/Foo")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


if __name__ == "__main__":
    save(opset11_model(), "tiny-opset11.onnx")
    save(external_model(), "tiny-external.onnx", external=True)
    save(unsupported_model(), "unsupported-op.onnx")
    with open(os.path.join(HERE, "tiny-opset11.onnx"), "rb") as f:
        data = f.read()
    with open(os.path.join(HERE, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(HERE, "not-a-model.onnx"), "w") as f:
        f.write("this is not an ONNX model\n")
