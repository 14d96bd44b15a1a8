// Build-time tool of the emulated CUDA device: turns one .cu/.cuh file into
// host C++ that g++ can compile, keeping every line where it was (so that
// diagnostics, __LINE__ and the emulator's reports name the real source line).
//
//   rewrite_cu INPUT OUTPUT EMU_HEADER GENERATED_ROOT
//
// Four rewrites, in code only (never inside comments or literals):
//   K<<<grid, block, smem, stream>>>(args)
//     -> ::tpp_emu::launch(::tpp_emu::launch_config(grid, block, smem, stream), __FILE__, __LINE__,
//                          [](auto... a) { K(a...); }, args)
//   __shared__ T name[dims];          -> a per-block (per worker thread) static, poisoned between blocks
//   extern __shared__ T name[];       -> a pointer to the launch's dynamic shared memory
//   #include "x.cuh"                  -> the rewritten copy of x.cuh under GENERATED_ROOT
//   static_cast<T>(v)                 -> ::tpp_emu::device_cast<T>(v): a float converted to
//                                        an integer saturates as on the GPU (cuda_emu.h)
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace {

struct Source {
  std::string text;
  std::string path;

  int line_of(size_t pos) const {
    int line = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
    return line;
  }
  [[noreturn]] void fail(size_t pos, const std::string& what) const {
    throw std::runtime_error(path + ":" + std::to_string(line_of(pos)) + ": " + what);
  }
};

bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Where the comment or literal starting at i ends (one past), or i when none starts there.
size_t skip_comment_or_literal(const std::string& s, size_t i) {
  if (s.compare(i, 2, "//") == 0) {
    const size_t end = s.find('\n', i);
    return end == std::string::npos ? s.size() : end;
  }
  if (s.compare(i, 2, "/*") == 0) {
    const size_t end = s.find("*/", i + 2);
    return end == std::string::npos ? s.size() : end + 2;
  }
  if (s[i] == '"' || s[i] == '\'') {
    // A ' between digits is a digit separator (1'000), not a literal.
    if (s[i] == '\'' && i > 0 && std::isxdigit(static_cast<unsigned char>(s[i - 1]))) return i;
    const char quote = s[i];
    size_t j = i + 1;
    while (j < s.size() && s[j] != quote) j += s[j] == '\\' ? 2 : 1;
    return j + 1;
  }
  return i;
}

// The index of the bracket closing the one at `open` (round brackets and
// braces nest; comments and literals are skipped).
size_t matching_close(const Source& src, size_t open) {
  const std::string& s = src.text;
  int depth = 0;
  for (size_t i = open; i < s.size();) {
    const size_t skipped = skip_comment_or_literal(s, i);
    if (skipped != i) {
      i = skipped;
      continue;
    }
    if (s[i] == '(' || s[i] == '{' || s[i] == '[') ++depth;
    if (s[i] == ')' || s[i] == '}' || s[i] == ']') {
      if (--depth == 0) return i;
    }
    ++i;
  }
  src.fail(open, "unbalanced brackets");
}

// The start of the callee written before `<<<` at pos: a (qualified) name with
// optional template arguments.
size_t callee_start(const Source& src, size_t pos) {
  const std::string& s = src.text;
  size_t i = pos;
  while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1]))) --i;
  if (i > 0 && s[i - 1] == '>') {
    int depth = 0;
    do {
      --i;
      if (s[i] == '>') ++depth;
      if (s[i] == '<') --depth;
    } while (i > 0 && depth > 0);
  }
  while (i > 0 && (is_ident(s[i - 1]) || s[i - 1] == ':')) --i;
  if (i == pos) src.fail(pos, "a kernel launch without a kernel name before <<<");
  return i;
}

// Rewrites the launch whose `<<<` is at pos; out already holds everything up
// to the callee. Returns the index just past the launch's closing ')'.
size_t rewrite_launch(const Source& src, size_t callee, size_t pos, std::string& out) {
  const std::string& s = src.text;
  size_t close = std::string::npos;
  int depth = 0;
  for (size_t i = pos + 3; i + 2 < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')') --depth;
    if (depth == 0 && s.compare(i, 3, ">>>") == 0) {
      close = i;
      break;
    }
  }
  if (close == std::string::npos) src.fail(pos, "<<< without >>>");
  size_t open_args = close + 3;
  while (open_args < s.size() && std::isspace(static_cast<unsigned char>(s[open_args]))) ++open_args;
  if (open_args >= s.size() || s[open_args] != '(') src.fail(close, "a kernel launch without its argument list");
  const size_t close_args = matching_close(src, open_args);
  const std::string name = s.substr(callee, pos - callee);
  const std::string config = s.substr(pos + 3, close - pos - 3);
  const std::string between = s.substr(close + 3, open_args - close - 3);  // whitespace, maybe newlines
  const std::string args = s.substr(open_args + 1, close_args - open_args - 1);
  bool no_args = true;
  for (const char c : args) no_args = no_args && std::isspace(static_cast<unsigned char>(c));
  out += "::tpp_emu::launch(::tpp_emu::launch_config(" + config + "), __FILE__, __LINE__, [](auto... tpp_emu_a) { " +
         name + "(tpp_emu_a...); }" + between + (no_args ? "" : ", ") + args + ")";
  return close_args + 1;
}

// Rewrites the declaration `[extern] __shared__ ...;` whose __shared__ is at pos.
size_t rewrite_shared(const Source& src, size_t pos, bool is_extern, std::string& out) {
  const std::string& s = src.text;
  const size_t end = s.find(';', pos);
  if (end == std::string::npos) src.fail(pos, "__shared__ declaration without ';'");
  const std::string decl = s.substr(pos + 10, end - pos - 10);
  const size_t bracket = decl.find('[');
  size_t name_end = bracket == std::string::npos ? decl.size() : bracket;
  while (name_end > 0 && std::isspace(static_cast<unsigned char>(decl[name_end - 1]))) --name_end;
  size_t name_begin = name_end;
  while (name_begin > 0 && is_ident(decl[name_begin - 1])) --name_begin;
  if (name_begin == name_end) src.fail(pos, "cannot find the name of this __shared__ variable");
  const std::string type = decl.substr(0, name_begin);
  const std::string name = decl.substr(name_begin, name_end - name_begin);
  if (is_extern) {
    out += type + "* const " + name + " = static_cast<" + type + "*>(::tpp_emu::dynamic_shared_memory())";
  } else {
    out += "static thread_local" + decl + "; [[maybe_unused]] static thread_local const bool tpp_emu_noted_" + name +
           " = ::tpp_emu::note_shared(&" + name + ", sizeof(" + name + "), __FILE__, __LINE__)";
  }
  return end;
}

std::string rewrite(const Source& src, const std::string& generated_root) {
  const std::string& s = src.text;
  std::string out;
  out.reserve(s.size() * 2);
  bool line_start = true;
  for (size_t i = 0; i < s.size();) {
    if (line_start && s[i] == '#') {
      const size_t eol = std::min(s.find('\n', i), s.size());
      std::string directive = s.substr(i, eol - i);
      const size_t q1 = directive.find('"'), q2 = directive.rfind('"');
      if (directive.find("include") != std::string::npos && q1 != q2 &&
          directive.compare(q2 - 4, 4, ".cuh") == 0) {
        const std::string header = directive.substr(q1 + 1, q2 - q1 - 1);
        directive = "#include \"" + generated_root + "/" + header + "\"";
      }
      out += directive;
      i = eol;
      continue;
    }
    const size_t skipped = skip_comment_or_literal(s, i);
    if (skipped != i) {
      out.append(s, i, skipped - i);
      i = skipped;
      line_start = false;
      continue;
    }
    if (s.compare(i, 3, "<<<") == 0) {
      const size_t callee = callee_start(src, i);
      out.resize(out.size() - (i - callee));
      i = rewrite_launch(src, callee, i, out);
      continue;
    }
    if (s.compare(i, 10, "__shared__") == 0 && (i == 0 || !is_ident(s[i - 1])) && !is_ident(s[i + 10])) {
      size_t before = out.size();
      while (before > 0 && std::isspace(static_cast<unsigned char>(out[before - 1]))) --before;
      const bool is_extern = before >= 6 && out.compare(before - 6, 6, "extern") == 0;
      if (is_extern) out.resize(before - 6);
      i = rewrite_shared(src, i, is_extern, out);
      continue;
    }
    if (s.compare(i, 11, "static_cast") == 0 && (i == 0 || !is_ident(s[i - 1])) && !is_ident(s[i + 11])) {
      out += "::tpp_emu::device_cast";
      i += 11;
      line_start = false;
      continue;
    }
    if (s[i] == '\n') line_start = true;
    else if (!std::isspace(static_cast<unsigned char>(s[i]))) line_start = false;
    out += s[i++];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: rewrite_cu INPUT OUTPUT EMU_HEADER GENERATED_ROOT\n";
    return 2;
  }
  try {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) throw std::runtime_error(std::string("cannot read ") + argv[1]);
    std::ostringstream text;
    text << in.rdbuf();
    const Source src{text.str(), argv[1]};
    std::ostringstream out;
    out << "#include \"" << argv[3] << "\"\n#line 1 \"" << argv[1] << "\"\n" << rewrite(src, argv[4]);
    const std::string tmp = std::string(argv[2]) + ".tmp";
    {
      std::ofstream file(tmp, std::ios::binary);
      file << out.str();
      if (!file) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), argv[2]) != 0) throw std::runtime_error(std::string("cannot write ") + argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "rewrite_cu: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
