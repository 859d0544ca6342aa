#include "experiments/engine/context.h"

#include "datasets/environment.h"

namespace experiments {

MetricSetup MetricSetup::of(const datasets::Environment& env) {
  MetricSetup setup;
  setup.env = env.name();
  setup.input_max = env.image_channels() == 3 ? 255.0 : 1.0;
  setup.pixels = env.image_size() * env.image_size();
  return setup;
}

}  // namespace experiments
