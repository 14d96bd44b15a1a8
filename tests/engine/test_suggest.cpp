// "Did you mean ...?": the nearest known name to a mistyped one.
#include <doctest/doctest.h>

#include "engine/suggest.h"
#include "engine/text.h"

using namespace tpp;

TEST_SUITE("engine") {
  TEST_CASE("edit distance counts insertions, deletions, substitutions and swaps, ignoring case") {
    CHECK(edit_distance("eval", "eval") == 0);
    CHECK(edit_distance("evl", "eval") == 1);
    CHECK(edit_distance("verison", "version") == 1);  // a swap
    CHECK(edit_distance("MNIST", "mnist") == 0);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
  }

  TEST_CASE("nearest_name: a unique completion, else the nearest within a third of the length, else none") {
    const std::vector<std::string> options = {"--epochs", "--lr-schedule", "--limit", "--test-limit"};
    CHECK(nearest_name("--epoch", options) == "--epochs");
    CHECK(nearest_name("--lr", options) == "--lr-schedule");
    CHECK(nearest_name("--limt", options) == "--limit");
    CHECK(nearest_name("--learning-rate", options) == std::nullopt);
    CHECK(nearest_name("-", options) == std::nullopt);
    CHECK(did_you_mean("evl", {"train", "eval", "prune"}) == "; did you mean 'eval'?");
    CHECK(did_you_mean("svhn", {"mnist", "cifar10"}).empty());
  }

  TEST_CASE("numbers for people: thousands separators and counted nouns") {
    CHECK(with_commas(0) == "0");
    CHECK(with_commas(93738) == "93,738");
    CHECK(with_commas(-1234567) == "-1,234,567");
    CHECK(counted(1, "epoch") == "1 epoch");
    CHECK(counted(2, "epoch") == "2 epochs");
    CHECK(counted(1, "batch") == "1 batch");
    CHECK(counted(12000, "batch") == "12,000 batches");
    CHECK(counted(0, "layer") == "0 layers");
  }
}
