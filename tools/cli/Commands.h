// Registration of pagedc's subcommands; each adds itself to the CLI app with its own callback.
#pragma once

#include <CLI/CLI.hpp>

namespace pagedc::cli {

// `pagedc bench` (tools/cli/BenchCommand.cpp).
void addBenchCommand(CLI::App& app);
void addCompileCommand(CLI::App& app);
void addGenerateCommand(CLI::App& app);
void addInspectCommand(CLI::App& app);
void addRunOnnxCommand(CLI::App& app);
void addServeCommand(CLI::App& app);
void addVersionCommand(CLI::App& app);
// `pagedc kernels list|emit|build|bench|check` (tools/cli/KernelsCommand.cpp).
void addKernelsCommand(CLI::App& app);
// `pagedc kernels check`, registered by the `kernels` command (tools/cli/KernelsCheckCommand.cpp).
void addKernelsCheckCommand(CLI::App& kernels);

}  // namespace pagedc::cli
