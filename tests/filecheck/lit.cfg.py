# lit configuration for pagedc's FileCheck tests: %pagedc-opt, %pagedc and FileCheck are substituted.
import os
import lit.formats

config.name = "pagedc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".pgir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = config.pagedc_test_exec_root
config.excludes = ["lit.cfg.py", "lit.site.cfg.py.in", "Inputs"]
config.environment["PATH"] = os.path.dirname(config.filecheck) + os.pathsep + config.environment.get("PATH", os.environ.get("PATH", ""))
config.substitutions.append(("%pagedc-opt", os.path.join(config.pagedc_tools_dir, "pagedc-opt")))
config.substitutions.append(("%pagedc ", os.path.join(config.pagedc_tools_dir, "pagedc") + " "))
config.substitutions.append(("%models", os.path.join(config.pagedc_source_dir, "models")))
config.substitutions.append(("FileCheck", config.filecheck))
config.substitutions.append(("not ", config.not_tool + " "))
# Tests that compile CUDA kernels (NVRTC, nvJitLink; no GPU needed) say REQUIRES: cuda-toolkit.
if config.pagedc_cuda_jit.upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("cuda-toolkit")
