# linquant_layer(NAME [DEPENDS targets...] [PRIVATE_DEPENDS targets...])
# Builds src/NAME/*.cpp into the static library linquant_NAME with the public headers,
# strict warnings and bit-exact float settings, and installs it with the package.
set(LINQUANT_LAYER_TARGETS "" CACHE INTERNAL "")

function(linquant_layer name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${name}/*.cpp)
  set(target linquant_${name})
  add_library(${target} STATIC ${sources})
  add_library(linquant::${name} ALIAS ${target})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS})
  # Bit-exact numerics: never let the compiler fuse a multiply and an add.
  target_compile_options(${target} PRIVATE -ffp-contract=off)
  linquant_strict_warnings(${target})
  install(TARGETS ${target} EXPORT linquantTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set(LINQUANT_LAYER_TARGETS ${LINQUANT_LAYER_TARGETS} ${target} CACHE INTERNAL "")
endfunction()
