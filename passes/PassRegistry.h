// Named graph passes, registered in one place and runnable alone by pagedc-opt --pass=NAME.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

struct PassInfo {
  std::string name;
  std::string summary;
  std::function<void(Graph&)> run;
};

const std::vector<PassInfo>& allPasses();
const PassInfo* findPass(std::string_view name);

}  // namespace pagedc
