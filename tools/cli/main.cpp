// pagedc: the user CLI. Each subcommand lives in its own file in tools/cli/.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/Commands.h"
#include "ir/Error.h"

int main(int argc, char** argv) {
  CLI::App app{"pagedc: compile ONNX decoder models for paged-attention serving"};
  app.require_subcommand(1);
  pagedc::cli::addBenchCommand(app);
  pagedc::cli::addCompileCommand(app);
  pagedc::cli::addGenerateCommand(app);
  pagedc::cli::addInspectCommand(app);
  pagedc::cli::addKernelsCommand(app);
  pagedc::cli::addRunOnnxCommand(app);
  pagedc::cli::addServeCommand(app);
  pagedc::cli::addVersionCommand(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pagedc::Error& e) {
    std::cerr << "pagedc: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
