// pagedc-opt: reads an ONNX model or IR text, runs named passes, prints the IR.
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "ir/OpDef.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"
#include "ir/Verifier.h"
#include "passes/PassRegistry.h"

namespace {

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::unique_ptr<pagedc::Graph> load(const std::string& path, bool verify) {
  if (endsWith(path, ".onnx")) {
    pagedc::OnnxImportOptions options;
    options.verify = verify;
    return pagedc::importOnnx(path, options);
  }
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) pagedc::fail(path, ": cannot open file");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto graph = pagedc::parseGraph(text, path == "-" ? "<stdin>" : path);
  if (verify) pagedc::verifyOrThrow(*graph);
  return graph;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pagedc-opt: read ONNX or pagedc IR text, run passes, print IR"};
  std::string input = "-";
  std::string output = "-";
  std::vector<std::string> passNames;
  bool noVerify = false;
  bool listOps = false;
  bool listPasses = false;
  app.add_option("input", input, "an .onnx file, an IR text file, or - for stdin");
  app.add_option("-o,--output", output, "where to write the IR (default stdout)");
  app.add_option("-p,--pass", passNames, "a pass to run (repeatable, in order); see --list-passes")->delimiter(',');
  app.add_flag("--no-verify", noVerify, "skip the verifier on input and after each pass");
  app.add_flag("--list-ops", listOps, "list the IR's ops and exit");
  app.add_flag("--list-passes", listPasses, "list the passes and exit");
  CLI11_PARSE(app, argc, argv);

  if (listOps) {
    for (const auto* def : pagedc::OpRegistry::instance().all()) std::cout << def->name << "\t" << def->summary << "\n";
    return 0;
  }
  if (listPasses) {
    for (const auto& pass : pagedc::allPasses()) std::cout << pass.name << "\t" << pass.summary << "\n";
    return 0;
  }
  try {
    auto graph = load(input, !noVerify);
    for (const auto& name : passNames) {
      const pagedc::PassInfo* pass = pagedc::findPass(name);
      if (!pass) pagedc::fail("unknown pass '", name, "' (see --list-passes)");
      pass->run(*graph);
      if (!noVerify) pagedc::verifyOrThrow(*graph);
    }
    std::string text = pagedc::printGraph(*graph);
    if (output == "-") {
      std::cout << text;
    } else {
      std::ofstream out(output, std::ios::binary);
      out << text;
      if (!out) pagedc::fail(output, ": cannot write");
    }
  } catch (const pagedc::Error& e) {
    std::cerr << "pagedc-opt: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
