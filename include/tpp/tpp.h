// The whole library in one include: tensors and autograd (engine/), the ops
// (ops/), datasets and loaders (data/), modules and the model zoo (models/),
// the training loop and run directories (train/), and pruning (prune/).
// Installed as <tpp/tpp.h>; each header is also available on its own, e.g.
// <tpp/engine/tensor.h> or, with the package's include directories,
// "engine/tensor.h". Link the CMake target tpp::tpp (find_package(tpp)).
#pragma once

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/init.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

#include "ops/batch_norm.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

#include "data/catalog.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"

#include "models/checkpoint.h"
#include "models/layers.h"
#include "models/module.h"
#include "models/summary.h"
#include "models/surgery.h"
#include "models/zoo.h"

#include "train/run_data.h"
#include "train/run_dir.h"
#include "train/trainer.h"
#include "train/training_run.h"

#include "prune/analysis.h"
#include "prune/jsv.h"
#include "prune/method.h"
#include "prune/orth.h"
#include "prune/pipeline.h"
#include "prune/plan.h"
#include "prune/tpp_penalties.h"
#include "prune/tpp_regularizer.h"
